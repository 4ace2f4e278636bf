"""The trainer's terminal progress bar, drawn by rich.

One line on stderr: the phase (compiling, training, evaluating, done), env
steps done of the run's real total, env steps/s, elapsed and remaining time.
The remaining time is estimated from training only (the first device call,
which compiles, is left out), the bar never passes the total, and while it
is drawn the user's own prints appear above it instead of on its line.
"""

from __future__ import annotations

import sys
import time
from typing import Optional, TextIO

from rich.console import Console
from rich.progress import (
  BarColumn,
  Progress,
  ProgressColumn,
  SpinnerColumn,
  Task,
  TaskID,
  TextColumn,
  TimeRemainingColumn,
)
from rich.text import Text


class _SinceStart(ProgressColumn):
  """Wall time since the bar was made (compile included), ``h:mm:ss``."""

  def __init__(self) -> None:
    super().__init__()
    self._t0 = time.monotonic()

  def render(self, task: Task) -> Text:
    del task
    s = int(time.monotonic() - self._t0)
    return Text(
      f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d} elapsed,",
      style="progress.elapsed",
    )


class ProgressBar:
  """The run's progress on the terminal.

  Args:
    total: env steps the run will do (brax rounds the asked-for number up
      to whole epochs: pass the rounded number).
    enabled: True/False; None shows the bar only when ``stream`` is a
      terminal.
    stream: where to draw (stderr by default).
  """

  def __init__(
    self,
    total: int,
    enabled: Optional[bool] = None,
    stream: Optional[TextIO] = None,
  ):
    stream = stream or sys.stderr
    if enabled is None:
      enabled = bool(getattr(stream, "isatty", lambda: False)())
    self.total = max(int(total), 1)
    self.enabled = bool(enabled) and total > 0
    self.done = 0
    self._progress: Optional[Progress] = None
    self._task: Optional[TaskID] = None
    self._timing = False  # the rate counts from the end of compiling
    if self.enabled:
      self._progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description:<10}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f} env steps"),
        TextColumn("{task.fields[rate]}"),
        _SinceStart(),
        TimeRemainingColumn(),
        TextColumn("left"),
        console=Console(file=stream),
        transient=False,
      )
      self._task = self._progress.add_task(
        "compiling", total=self.total, rate=""
      )
      self._progress.start()

  def update(self, done: int) -> None:
    """``done`` env steps are done (the bar stops at the total)."""
    self.done = min(max(int(done), self.done), self.total)
    progress, task = self._progress, self._task
    if progress is None or task is None:
      return
    if not self._timing:  # the first call (and its compile) is over
      self._timing = True
      progress.reset(task, total=self.total, completed=self.done, rate="")
      return
    progress.update(task, completed=self.done)
    speed = progress.tasks[0].speed
    if speed:
      progress.update(task, rate=f"{speed:,.0f}/s")

  def phase(self, name: str) -> None:
    """Say what the run does now: ``"evaluating"``, ``"training"``, ..."""
    if self._progress is not None and self._task is not None:
      self._progress.update(self._task, description=name)

  def close(self) -> None:
    """Leave the bar's last state on screen (``done`` when complete)."""
    progress, self._progress = self._progress, None
    if progress is not None and self._task is not None:
      if self.done >= self.total:
        progress.update(self._task, description="done")
      progress.stop()
