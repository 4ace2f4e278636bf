"""Live uPlot charts: training curves over env steps, and per-env traces.

Each chart owns a bounded buffer (no growth over a long run) and is pushed to
the page only when its data changed, at most a few times a second.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import viser
import viser.uplot as uplot

from braxviewer.core.protocol import TRAINING_SPS
from braxviewer.web.traces import DEFAULT_WINDOW

PALETTE = (
  "#1f77b4",
  "#d62728",
  "#2ca02c",
  "#ff7f0e",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#17becf",
  "#bcbd22",
  "#7f7f7f",
)

# Training-curve groups: (title, predicate on the progress key). The speed
# chart plots the trainer's own key (epochs and per-call heartbeats), not
# eval/sps (the speed of eval rollouts).
_GROUPS: Tuple[Tuple[str, Callable[[str], bool]], ...] = (
  ("Eval reward", lambda k: k.endswith("episode_reward")),
  ("Env steps / s", lambda k: k == TRAINING_SPS),
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
    out.append(
      uplot.Series(label=label, stroke=PALETTE[i % len(PALETTE)], width=1.5)
    )
  return tuple(out)


class _Curve:
  """One group's points: env steps and each metric, forward-filled."""

  def __init__(self):
    self.steps: List[float] = []
    self.values: Dict[str, List[float]] = {}

  def add(self, step: int, metrics: Mapping[str, float]) -> None:
    if self.steps and step < self.steps[-1]:  # a new run: start over
      self.steps.clear()
      self.values.clear()
    n = len(self.steps)
    for key, value in metrics.items():
      if key not in self.values:  # back-fill a new metric with its first value
        self.values[key] = [float(value)] * n
    for key, column in self.values.items():
      column.append(float(metrics.get(key, column[-1] if column else np.nan)))
    self.steps.append(float(step))

  def thin(self, max_points: int) -> None:
    """Halve the resolution when too long (keeps the whole run, bounded)."""
    if len(self.steps) <= max_points:
      return
    keep = list(range(0, len(self.steps) - 1, 2)) + [len(self.steps) - 1]
    self.steps = [self.steps[i] for i in keep]
    self.values = {k: [v[i] for i in keep] for k, v in self.values.items()}


class ProgressCurves:
  """Training metrics over env steps, one chart per group.

  Args:
    gui: the viser GUI API.
    container: the GUI folder or tab the charts go into.
    max_points: points kept per chart (older ones thinned, never grows).
  """

  def __init__(self, gui: viser.GuiApi, container, max_points: int = 1000):
    self._gui = gui
    self._container = container
    self._max = max_points
    self._lock = threading.Lock()
    # per chart, per run (None: the one run of an in-process viewer)
    self._curves: Dict[str, Dict[Optional[str], _Curve]] = {}
    self._latest: Dict[str, float] = {}
    self._dirty: set = set()
    self._stale = False
    self._charts: Dict[str, Tuple[Any, viser.GuiUplotHandle]] = {}
    with container:
      self._hint = gui.add_markdown("_No training progress yet._")

  def add(
    self,
    env_steps: int,
    metrics: Mapping[str, float],
    run: Optional[str] = None,
  ) -> None:
    """Record one progress report (thread-safe, cheap); ``run`` names the
    run it belongs to when several share the charts (a viewer server):
    each chart then overlays every run's curves."""
    groups: Dict[str, Dict[str, float]] = {}
    for key, value in metrics.items():
      title = group_of(key)
      try:
        value = float(value)
      except (TypeError, ValueError):
        continue
      if title is not None and np.isfinite(value):
        groups.setdefault(title, {})[key] = value
    with self._lock:
      self._latest.update(
        {
          k: float(v)
          for k, v in metrics.items()
          if isinstance(v, (int, float, np.floating, np.integer))
        }
      )
      for title, values in groups.items():
        curve = self._curves.setdefault(title, {}).setdefault(run, _Curve())
        curve.add(int(env_steps), values)
        curve.thin(self._max)
        self._dirty.add(title)

  def latest(self, key: str) -> Optional[float]:
    with self._lock:
      return self._latest.get(key)

  def rebuild(self) -> None:
    """Re-create every chart at the next refresh.

    A page that connects late gets a chart's creation message replayed but
    not its later data updates (seen with viser 1.1.1), so charts are made
    anew, with their current data, whenever a page connects.
    """
    with self._lock:
      self._dirty |= set(self._curves)
      self._stale = True

  def num_points(self, title: str) -> int:
    """Points of chart ``title`` (all runs together)."""
    with self._lock:
      runs = self._curves.get(title, {})
      return sum(len(curve.steps) for curve in runs.values())

  def runs(self, title: str) -> Tuple[Optional[str], ...]:
    """The runs chart ``title`` overlays, in order of arrival."""
    with self._lock:
      return tuple(self._curves.get(title, {}))

  def forget(self, run: str) -> None:
    """Take ``run``'s curves off every chart."""
    with self._lock:
      for title, runs in self._curves.items():
        if runs.pop(run, None) is not None:
          self._dirty.add(title)

  def refresh(self) -> None:
    """Push changed curves to the page (viewer thread)."""
    with self._lock:
      dirty, self._dirty = self._dirty, set()
      stale, self._stale = self._stale, False
      snap = {t: _overlay(self._curves.get(t, {})) for t in dirty}
    if snap and self._hint is not None:
      self._hint.remove()
      self._hint = None
    for title, (steps, values) in snap.items():
      if len(steps) < 1:
        continue
      metrics = tuple(values)
      # Short tick labels (uPlot cuts long ones, and packs them together):
      # env steps in thousands or millions, large values likewise.
      x_div, x_unit = _unit(float(np.max(np.abs(steps))))
      y_div, y_unit = _unit(
        max(
          float(np.nanmax(np.abs(v))) if len(v) else 0.0
          for v in values.values()
        )
      )
      names = tuple(
        n + (f" ({y_unit})" if y_unit else "") for n in _short_names(metrics)
      )
      # Overlaid runs leave NaN outside each run's steps; uPlot's automatic
      # range does not skip NaN, so such a chart gets its y range from here
      # (a rounded one: the chart is made anew only when the data leaves it).
      y_range = _y_range(values, y_div)
      key = (metrics, x_unit, y_unit, y_range)
      data = (steps / x_div,) + tuple(values[k] / y_div for k in metrics)
      chart = self._charts.get(title)
      if chart is not None and (chart[0] != key or stale):
        chart[1].remove()
        chart = None
      if chart is None:
        with self._container:
          handle = self._gui.add_uplot(
            data,
            _series(names, "env steps" + (f" ({x_unit})" if x_unit else "")),
            title=title,
            aspect=2.0,
            scales={
              "x": uplot.Scale(time=False),
              **(
                {}
                if y_range is None
                else {"y": uplot.Scale(auto=False, range=y_range)}
              ),
            },
            axes=(uplot.Axis(space=70), uplot.Axis(size=56)),
            cursor=uplot.Cursor(drag=uplot.Cursor_Drag(x=False, y=False)),
          )
        self._charts[title] = (key, handle)
      else:
        chart[1].data = data


def _overlay(
  runs: Mapping[Optional[str], _Curve],
) -> Tuple[np.ndarray, Dict[str, np.ndarray]]:
  """One chart's data: env steps and a column per metric (per run and
  metric, ``"run · metric"``, when several runs share it: on the union of
  their steps, each run's line as drawn alone, NaN outside its range)."""
  if len(runs) == 1:
    (curve,) = runs.values()
    return np.asarray(curve.steps), {
      k: np.asarray(v) for k, v in curve.values.items()
    }
  live = {r: c for r, c in runs.items() if c.steps}
  if not live:
    return np.zeros(0), {}
  steps = np.unique(
    np.concatenate([np.asarray(c.steps) for c in live.values()])
  )
  columns: Dict[str, np.ndarray] = {}
  for run, curve in live.items():
    x = np.asarray(curve.steps)
    inside = (steps >= x[0]) & (steps <= x[-1])
    for key, values in curve.values.items():
      column = np.full(len(steps), np.nan)
      column[inside] = np.interp(steps[inside], x, np.asarray(values))
      columns[f"{run} · {key}"] = column
  return steps, columns


def _y_range(
  values: Mapping[str, np.ndarray], divisor: float
) -> Optional[Tuple[float, float]]:
  """A fixed y range for a chart whose columns hold NaN (None: none do):
  the data's range widened to whole steps of a round size, with room."""
  if not any(np.isnan(v).any() for v in values.values()):
    return None
  finite = np.concatenate([v[np.isfinite(v)] for v in values.values()])
  if not len(finite):
    return (0.0, 1.0)
  lo, hi = float(finite.min()) / divisor, float(finite.max()) / divisor
  span = max(hi - lo, abs(hi) * 0.1, 1e-9)
  step = 10.0 ** np.floor(np.log10(span))
  step *= 5 if span / step > 5 else (2 if span / step > 2 else 1)
  return (float(np.floor(lo / step) * step), float(np.ceil(hi / step) * step))


def _unit(largest: float) -> Tuple[float, str]:
  """``(divisor, suffix)`` that keeps numbers up to ``largest`` short."""
  if not np.isfinite(largest):
    return 1.0, ""
  if largest >= 1e6:
    return 1e6, "M"
  if largest >= 1e4:
    return 1e3, "k"
  return 1.0, ""


def _short_names(names: Sequence[str]) -> list:
  """``eval/episode_reward`` -> ``episode_reward`` where that stays unique."""

  def short_one(name: str) -> str:
    run, dot, metric = name.rpartition(" · ")  # a run's curve: keep its run
    return run + dot + metric.split("/", 1)[-1]

  short = [short_one(n) for n in names]
  return [s if short.count(s) == 1 else n for s, n in zip(short, names)]


class TraceChart:
  """The chart of one env's traces in the page."""

  def __init__(
    self,
    gui: viser.GuiApi,
    container,
    window: int = DEFAULT_WINDOW,
    title: str = "Selected env: reward and terms",
  ):
    self._gui = gui
    self._title = title
    self._container = container
    self._window = int(window)
    self._labels: Tuple[str, ...] = ()
    self._handle = None

  def rebuild(self) -> None:
    """Re-create the chart at the next :meth:`show` (see ProgressCurves)."""
    self._labels = ()

  def show(self, labels: Tuple[str, ...], data: Tuple[np.ndarray, ...]) -> None:
    """Show the traces against frames before the newest one (x <= 0).

    The x range is fixed, not the moving sim time: viser 1.1.1's uPlot keeps
    the x range it had when the chart was made (e.g. in a hidden tab), and a
    moving window then scrolled out of it: an empty chart."""
    if len(data[0]) < 2:
      return
    n = len(data[0])
    data = (np.arange(1 - n, 1, dtype=np.float64),) + tuple(data[1:])
    if self._handle is not None and labels == self._labels:
      self._handle.data = data
      return
    if self._handle is not None:
      self._handle.remove()
    series = list(_series(labels, "frames ago"))
    series[-1] = uplot.Series(
      label="reset",
      stroke="#e03c3c",
      width=1,
      scale="reset",
      fill="rgba(224,60,60,0.12)",
    )
    with self._container:
      self._handle = self._gui.add_uplot(
        data,
        tuple(series),
        title=self._title,
        aspect=1.6,
        scales={
          "x": uplot.Scale(
            time=False, auto=False, range=(1.0 - self._window, 0.0)
          ),
          "reset": uplot.Scale(auto=False, range=(0.0, 1.0)),
        },
        cursor=uplot.Cursor(drag=uplot.Cursor_Drag(x=False, y=False)),
      )
    self._labels = labels

  def remove(self) -> None:
    if self._handle is not None:
      self._handle.remove()
      self._handle = None
