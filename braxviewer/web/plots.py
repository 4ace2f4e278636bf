"""Live uPlot charts: training curves over env steps, and per-env traces.

Each chart owns a bounded buffer (no growth over a long run) and is pushed to
the page only when its data changed, at most a few times a second.
"""

from __future__ import annotations

import threading
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import viser
import viser.uplot as uplot

PALETTE = (
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
    "#e377c2", "#17becf", "#bcbd22", "#7f7f7f",
)

# Training-curve groups: (title, predicate on the metric name).
_GROUPS: Tuple[Tuple[str, object], ...] = (
    ("Eval reward", lambda k: k.endswith("episode_reward")),
    ("Env steps / s", lambda k: k.endswith("sps")),
    ("Losses", lambda k: "loss" in k),
    ("Episode length", lambda k: k.endswith("episode_length")),
)


def group_of(key: str) -> Optional[str]:
  """The curve group a progress metric belongs to (None: not plotted)."""
  for title, pred in _GROUPS:
    if pred(key):
      return title
  return None


def _series(labels: Sequence[str], x_label: str) -> Tuple[uplot.Series, ...]:
  out = [uplot.Series(label=x_label)]
  for i, label in enumerate(labels):
    out.append(uplot.Series(label=label, stroke=PALETTE[i % len(PALETTE)],
                            width=1.5))
  return tuple(out)


class ProgressCurves:
  """Training metrics over env steps, one chart per group.

  Args:
    gui: the viser GUI API.
    container: the GUI folder or tab the charts go into.
    max_points: points kept per chart (oldest dropped).
  """

  def __init__(self, gui: viser.GuiApi, container, max_points: int = 2000):
    self._gui = gui
    self._container = container
    self._max = max_points
    self._lock = threading.Lock()
    self._steps: List[int] = []
    self._rows: List[Dict[str, float]] = []
    self._dirty = False
    self._charts: Dict[str, Tuple[Tuple[str, ...], object]] = {}
    with container:
      self._hint = gui.add_markdown("_No training progress yet._")

  def add(self, env_steps: int, metrics: Mapping[str, float]) -> None:
    """Record one progress report (thread-safe, cheap)."""
    with self._lock:
      self._steps.append(int(env_steps))
      self._rows.append(dict(metrics))
      if len(self._steps) > self._max:
        del self._steps[0], self._rows[0]
      self._dirty = True

  def latest(self, key: str) -> Optional[float]:
    with self._lock:
      for row in reversed(self._rows):
        if key in row:
          return row[key]
    return None

  @property
  def num_points(self) -> int:
    with self._lock:
      return len(self._steps)

  def refresh(self) -> None:
    """Push changed curves to the page (viewer thread)."""
    with self._lock:
      if not self._dirty:
        return
      self._dirty = False
      steps = np.asarray(self._steps, dtype=np.float64)
      rows = list(self._rows)
    keys: Dict[str, List[str]] = {}
    for row in rows:
      for key in row:
        title = group_of(key)
        if title is not None and key not in keys.setdefault(title, []):
          keys[title].append(key)
    if keys and self._hint is not None:
      self._hint.remove()
      self._hint = None
    for title, names in keys.items():
      data = (steps,) + tuple(
          np.asarray([row.get(k, np.nan) for row in rows], dtype=np.float64)
          for k in names)
      labels = tuple(names)
      chart = self._charts.get(title)
      if chart is not None and chart[0] != labels:
        chart[1].remove()
        chart = None
      if chart is None:
        with self._container:
          handle = self._gui.add_uplot(
              data, _series([_short(n) for n in names], "env steps"),
              title=title, aspect=2.0,
              scales={"x": uplot.Scale(time=False)},
              cursor=uplot.Cursor(drag=uplot.Cursor_Drag(x=False, y=False)),
          )
        self._charts[title] = (labels, handle)
      else:
        chart[1].data = data


def _short(name: str) -> str:
  return name.split("/", 1)[-1]


class TraceChart:
  """The chart of one env's traces in the page."""

  def __init__(self, gui: viser.GuiApi, container):
    self._gui = gui
    self._container = container
    self._labels: Tuple[str, ...] = ()
    self._handle = None

  def show(self, labels: Tuple[str, ...], data: Tuple[np.ndarray, ...]) -> None:
    if len(data[0]) < 2:
      return
    if self._handle is not None and labels == self._labels:
      self._handle.data = data
      return
    if self._handle is not None:
      self._handle.remove()
    series = list(_series(labels, "time (s)"))
    series[-1] = uplot.Series(
        label="reset", stroke="#e03c3c", width=0,
        points=uplot.Series_Points(show=True, size=7, fill="#e03c3c"))
    with self._container:
      self._handle = self._gui.add_uplot(
          data, tuple(series), title="Selected env: reward and terms",
          aspect=1.6, scales={"x": uplot.Scale(time=False)},
          cursor=uplot.Cursor(drag=uplot.Cursor_Drag(x=False, y=False)),
      )
    self._labels = labels

  def remove(self) -> None:
    if self._handle is not None:
      self._handle.remove()
      self._handle = None
