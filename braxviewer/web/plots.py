"""Live uPlot charts: training curves over env steps, and per-env traces.

Each chart owns a bounded buffer (no growth over a long run) and is pushed to
the page only when its data changed, at most a few times a second. A chart
is made once, in its fixed place (:mod:`curves`), and then changed in
place: a new run, metric, unit or range never re-creates it (a chart made
anew is drawn at zero width for a moment, its legend stacked up).
"""

from __future__ import annotations

import threading
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import viser
import viser.uplot as uplot

from braxviewer.web.curves import (
  CHART_ORDER,
  PALETTE,
  Column,
  Curve,
  Run,
  RunColours,
  group_of,
  labels,
  line_styles,
  overlay,
  unit,
  y_range,
)
from braxviewer.web.traces import DEFAULT_WINDOW

__all__ = ["PALETTE", "ProgressCurves", "TraceChart", "group_of"]

# Room above the plot for the top y label, right of it for the last x label
# (uPlot draws labels centred on their ticks, cut at the canvas' edges).
_PADDING = (12, 24, 0, 0)
_Y_AXIS_WIDTH = 64  # "-0.0025" or "7,500" whole


def _series(labels: Sequence[str], x_label: str) -> Tuple[uplot.Series, ...]:
  out = [uplot.Series(label=x_label)]
  for i, label in enumerate(labels):
    out.append(
      uplot.Series(label=label, stroke=PALETTE[i % len(PALETTE)], width=1.5)
    )
  return tuple(out)


class _Chart:
  """One chart on the page and what it was last sent.

  New options (series, scales) are sent apart from new data, one refresh
  later: viser's uPlot re-makes a chart whose options change in place, and
  re-made in the same update as new data, it keeps a wrong x range (it
  then holds the x range as a fraction of the data's, and that fraction
  shrinks each time until the lines are off the chart).
  """

  def __init__(self, handle: viser.GuiUplotHandle, key: tuple, arrays: int):
    self.handle, self.key, self.arrays = handle, key, arrays
    self.pending: Optional[tuple] = None  # (series, scales, key, arrays)


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
    self._curves: Dict[str, Dict[Run, Curve]] = {}
    self._columns: Dict[str, List[Column]] = {}  # per chart, as they came
    self._colours = RunColours()
    self._latest: Dict[str, float] = {}
    self._dirty: set = set()
    self._stale = False
    self._charts: Dict[str, _Chart] = {}
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
    each chart then overlays every run's curves, a colour per run."""
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
      if run is not None and groups:
        self._colours.slot(run)
      for title, values in groups.items():
        curve = self._curves.setdefault(title, {}).setdefault(run, Curve())
        curve.add(int(env_steps), values)
        curve.thin(self._max)
        columns = self._columns.setdefault(title, [])
        columns.extend((run, k) for k in values if (run, k) not in columns)
        self._dirty.add(title)

  def latest(self, key: str) -> Optional[float]:
    with self._lock:
      return self._latest.get(key)

  def rebuild(self) -> None:
    """Send every chart whole again at the next refresh.

    A page that connects late got a chart's creation message replayed but
    not its later data updates (seen with viser 1.1.1), so its data, series
    and scales are sent again whenever a page connects: in place, so the
    pages open already see no change (a chart made anew would collapse on
    them for a moment).
    """
    with self._lock:
      self._dirty |= set(self._curves)
      self._stale = True

  def num_points(self, title: str) -> int:
    """Points of chart ``title`` (all runs together)."""
    with self._lock:
      runs = self._curves.get(title, {})
      return sum(len(curve.steps) for curve in runs.values())

  def runs(self, title: str) -> Tuple[Run, ...]:
    """The runs chart ``title`` overlays, in order of arrival."""
    with self._lock:
      return tuple(self._curves.get(title, {}))

  def colour(self, run: str) -> str:
    """``run``'s colour in every chart."""
    with self._lock:
      return self._colours.colour(run)

  def forget(self, run: str) -> None:
    """Take ``run``'s curves off every chart (its colour is free again)."""
    with self._lock:
      self._colours.forget(run)
      for title, runs in self._curves.items():
        if runs.pop(run, None) is not None:
          self._columns[title] = [
            c for c in self._columns[title] if c[0] != run
          ]
          self._dirty.add(title)

  def refresh(self) -> None:
    """Push changed curves to the page (viewer thread)."""
    with self._lock:
      dirty, self._dirty = self._dirty, set()
      stale, self._stale = self._stale, False
      snap = {
        t: (
          list(self._columns[t]),
          overlay(self._curves.get(t, {}), self._columns[t]),
          line_styles(self._columns[t], self._colours),
        )
        for t in sorted(dirty, key=CHART_ORDER.__getitem__)
      }
    if snap and self._hint is not None:
      self._hint.remove()
      self._hint = None
    for title, (columns, (steps, values), styles) in snap.items():
      if not columns and title in self._charts:  # its runs were forgotten
        self._charts.pop(title).handle.remove()
      if len(steps) < 1 or not columns:
        continue
      self._show(title, columns, steps, values, styles, stale)

  def _show(
    self,
    title: str,
    columns: List[Column],
    steps: np.ndarray,
    values: List[np.ndarray],
    styles: List[Tuple[str, Tuple[float, ...]]],
    stale: bool,
  ) -> None:
    # Short tick labels (uPlot cuts long ones, and packs them together):
    # env steps in thousands or millions, large values likewise.
    x_div, x_unit = unit(float(np.max(np.abs(steps))))
    y_div, y_unit = unit(
      max(
        float(np.nanmax(np.abs(v))) if np.isfinite(v).any() else 0.0
        for v in values
      )
    )
    x_label = "env steps" + (f" ({x_unit})" if x_unit else "")
    names = [n + (f" ({y_unit})" if y_unit else "") for n in labels(columns)]
    series = [uplot.Series(label=x_label)]
    for name, (stroke, dash) in zip(names, styles):
      line = uplot.Series(label=name, stroke=stroke, width=1.5)
      if dash:
        line["dash"] = dash
      series.append(line)
    # Overlaid runs leave NaN outside each run's steps; uPlot's automatic
    # range does not skip NaN, so such a chart gets its y range from here
    # (a rounded one: it changes only when the data leaves it).
    fixed = y_range(values, y_div)
    scales = {
      "x": uplot.Scale(time=False),
      **({} if fixed is None else {"y": uplot.Scale(auto=False, range=fixed)}),
    }
    key = (x_label, tuple(names), tuple(styles), fixed)
    data = (steps / x_div,) + tuple(v / y_div for v in values)
    chart = self._charts.get(title)
    if chart is None:
      with self._container:
        handle = self._gui.add_uplot(
          data,
          tuple(series),
          title=title,
          aspect=2.0,
          scales=scales,
          axes=(uplot.Axis(space=70), uplot.Axis(size=_Y_AXIS_WIDTH)),
          cursor=uplot.Cursor(drag=uplot.Cursor_Drag(x=False, y=False)),
          padding=_PADDING,
          order=CHART_ORDER[title],
        )
      self._charts[title] = _Chart(handle, key, len(data))
      return
    if chart.pending is not None:  # the options of the data sent last
      chart.handle.series, chart.handle.scales, chart.key, chart.arrays = (
        chart.pending
      )
      chart.pending = None
      self._again(title)  # its data at the next refresh
      return
    if not stale and key == chart.key:
      chart.handle.data = data
      return
    if len(data) < chart.arrays:  # a run was forgotten: its series go first
      chart.handle.series, chart.handle.scales = tuple(series), scales
      chart.key, chart.arrays = key, len(data)
    else:  # the data first (a column without its series is not drawn)
      chart.handle.data = data
      chart.pending = (tuple(series), scales, key, len(data))
    self._again(title)

  def _again(self, title: str) -> None:
    """Refresh chart ``title`` at the next refresh too."""
    with self._lock:
      self._dirty.add(title)


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
