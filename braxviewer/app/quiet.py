"""Library output that repeats every step, collapsed (the demos and the CLI).

Some libraries print a line per simulation step from compiled code (MuJoCo
Warp's ``solver iterations limit reached``: thousands a minute), straight to
file descriptor 1, past Python and past the progress bar. While
:class:`CollapseRepeats` is active, fd 1 goes through a pipe: each line
passes once; a line that comes again (the same text, numbers aside) is
counted instead, and a summary says how often, at the end. Python's own
prints are not touched (``sys.stdout`` writes to the terminal directly), and
lines from the pipe are written through ``sys.stdout`` too, so they appear
above a progress bar rather than across it. No JAX.
"""

from __future__ import annotations

import collections
import io
import os
import re
import sys
import threading
from typing import Counter, Dict, Optional, TextIO

_DIGITS = re.compile(rb"\d+")


class CollapseRepeats:
  """Collapses repeated lines written to fd 1 (use as a context manager).

  Args:
    keep: times a line is shown before its repeats are only counted.
    report: where the summary goes (stderr by default).
  """

  def __init__(self, keep: int = 1, report: Optional[TextIO] = None):
    self.keep = int(keep)
    self._report = report
    self.counts: Counter[bytes] = collections.Counter()
    self.first: Dict[bytes, str] = {}
    self._saved: Optional[int] = None
    self._stdout: Optional[TextIO] = None
    self._thread: Optional[threading.Thread] = None

  def __enter__(self) -> "CollapseRepeats":
    sys.stdout.flush()
    self._stdout = sys.stdout
    self._saved = os.dup(1)
    sys.stdout = io.TextIOWrapper(
      io.FileIO(self._saved, "w", closefd=False),
      encoding=getattr(self._stdout, "encoding", None) or "utf-8",
      errors="replace",
      line_buffering=True,
    )
    read, write = os.pipe()
    os.dup2(write, 1)
    os.close(write)
    self._thread = threading.Thread(
      target=self._pump, args=(read,), name="braxviewer-quiet", daemon=True
    )
    self._thread.start()
    return self

  def __exit__(self, *exc: object) -> None:
    if self._saved is None:
      return
    sys.stdout.flush()
    os.dup2(self._saved, 1)  # the pipe's last writer goes: the pump ends
    if self._thread is not None:
      self._thread.join(timeout=5.0)
    ours, sys.stdout = sys.stdout, self._stdout or sys.__stdout__
    ours.flush()
    os.close(self._saved)
    self._saved = None
    self._summarize()

  def _pump(self, fd: int) -> None:
    pending = b""
    with os.fdopen(fd, "rb", buffering=0) as pipe:
      while True:
        data = pipe.read(65536)
        if not data:
          break
        pending += data
        *lines, pending = pending.split(b"\n")
        for line in lines:
          self._line(line + b"\n")
        if b"\r" in pending or b"\x1b" in pending:  # a live display: as is
          self._write(pending)
          pending = b""
    if pending:
      self._line(pending)

  def _line(self, line: bytes) -> None:
    if b"\x1b" in line or b"\r" in line or not line.strip():
      self._write(line)
      return
    key = _DIGITS.sub(b"#", line.strip())
    self.counts[key] += 1
    if self.counts[key] <= self.keep:
      self.first.setdefault(key, line.decode("utf-8", "replace").strip())
      self._write(line)

  def _write(self, data: bytes) -> None:
    out = sys.stdout  # now, e.g. a progress bar's redirect
    try:
      out.write(data.decode("utf-8", "replace"))
      out.flush()
    except (OSError, ValueError):
      pass

  def _summarize(self) -> None:
    report = self._report or sys.stderr
    for key, count in self.counts.most_common():
      hidden = count - self.keep
      if hidden <= 0:
        continue
      text = self.first[key]
      text = text if len(text) <= 100 else text[:97] + "..."
      report.write(
        f"braxviewer: {hidden:,} more lines like {text!r} were not shown"
        " (--verbose shows all).\n"
      )
    report.flush()
