"""A dependency-free terminal progress bar for training runs."""

from __future__ import annotations

import sys
import time
from typing import Optional, TextIO


class ProgressBar:
  """One line on stderr: env steps done, steps/s, time left.

  Args:
    total: env steps the run will do.
    enabled: True/False; None shows the bar only when the stream is a TTY.
    stream: where to draw (stderr by default).
  """

  def __init__(
      self, total: int, enabled: Optional[bool] = None,
      stream: Optional[TextIO] = None, width: int = 30,
  ):
    self._stream = stream or sys.stderr
    if enabled is None:
      enabled = bool(getattr(self._stream, "isatty", lambda: False)())
    self.enabled = enabled and total > 0
    self._total = max(int(total), 1)
    self._width = width
    self._t0 = time.time()
    self._last_draw = 0.0
    self._drawn = False

  def render(self, done: int) -> str:
    """The bar's text for ``done`` env steps."""
    frac = min(max(done / self._total, 0.0), 1.0)
    filled = int(round(frac * self._width))
    elapsed = max(time.time() - self._t0, 1e-9)
    rate = done / elapsed
    left = (self._total - done) / rate if rate > 0 and done < self._total else 0
    return (
        f"[{'#' * filled}{'.' * (self._width - filled)}] {frac:6.1%}"
        f"  {done:,}/{self._total:,} env steps  {rate:,.0f}/s"
        f"  {_clock(elapsed)} elapsed, {_clock(left)} left"
    )

  def update(self, done: int) -> None:
    if not self.enabled:
      return
    now = time.time()
    if now - self._last_draw < 0.2 and done < self._total:
      return
    self._last_draw = now
    self._stream.write("\r" + self.render(done))
    self._stream.flush()
    self._drawn = True

  def close(self) -> None:
    if self.enabled and self._drawn:
      self._stream.write("\n")
      self._stream.flush()


def _clock(seconds: float) -> str:
  seconds = int(seconds)
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"
