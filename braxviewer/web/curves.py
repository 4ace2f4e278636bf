"""The training curves' data: which chart a metric goes to, the charts'
order, each run's colour, and one chart's columns (numpy only, no viser).

Charts come in a fixed order, eval first (what a user looks for first):
*Eval reward*, *Episode length* (eval), then the training metrics *Env
steps / s* and *Losses*. Within a chart, curves keep the order they first
arrived in: a new metric or run is appended, the others stay put. Each run
keeps one colour in every chart (its slot in :class:`RunColours`); a run's
metrics in one chart differ by dash. The one unnamed run of an in-process
viewer colours its metrics instead.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from braxviewer.core.protocol import TRAINING_SPS

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
# A run's metrics within one chart: solid, dashed, dotted, dash-dot.
DASHES: Tuple[Tuple[float, ...], ...] = ((), (6, 3), (2, 3), (8, 3, 2, 3))

# The charts, in page order: (title, predicate on the progress key). The
# speed chart plots the trainer's own key (epochs and per-call heartbeats),
# not eval/sps (the speed of eval rollouts).
GROUPS: Tuple[Tuple[str, Callable[[str], bool]], ...] = (
  ("Eval reward", lambda k: k.endswith("episode_reward")),
  ("Episode length", lambda k: k.endswith("episode_length")),
  ("Env steps / s", lambda k: k == TRAINING_SPS),
  ("Losses", lambda k: "loss" in k),
)
CHART_ORDER: Dict[str, int] = {title: i for i, (title, _) in enumerate(GROUPS)}

Run = Optional[str]  # None: the one run of an in-process viewer
Column = Tuple[Run, str]  # (run, metric key)


def group_of(key: str) -> Optional[str]:
  """The chart a progress metric belongs to (None: not plotted)."""
  for title, pred in GROUPS:
    if pred(key):
      return title
  return None


class Curve:
  """One run's points in one chart: env steps and each metric,
  forward-filled."""

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


class RunColours:
  """A colour slot per run: the lowest free one when the run first reports,
  kept until it is forgotten (so runs that come and go never recolour the
  others)."""

  def __init__(self):
    self._slots: Dict[str, int] = {}

  def slot(self, run: str) -> int:
    if run not in self._slots:
      taken = set(self._slots.values())
      self._slots[run] = next(
        i for i in range(len(taken) + 1) if i not in taken
      )
    return self._slots[run]

  def colour(self, run: str) -> str:
    return PALETTE[self.slot(run) % len(PALETTE)]

  def forget(self, run: str) -> None:
    self._slots.pop(run, None)


def line_styles(
  columns: Sequence[Column], colours: RunColours
) -> List[Tuple[str, Tuple[float, ...]]]:
  """``(stroke, dash)`` of each column: its run's colour and a dash per
  metric of that run (the unnamed run: a colour per metric)."""
  out = []
  seen: Dict[Run, int] = {}
  for i, (run, _) in enumerate(columns):
    if run is None:
      out.append((PALETTE[i % len(PALETTE)], ()))
      continue
    j = seen[run] = seen.get(run, -1) + 1
    out.append((colours.colour(run), DASHES[j % len(DASHES)]))
  return out


def overlay(
  runs: Mapping[Run, Curve], columns: Sequence[Column]
) -> Tuple[np.ndarray, List[np.ndarray]]:
  """One chart's data: env steps and one array per column, on the union of
  the runs' steps (each run's line as drawn alone, NaN outside its range)."""
  live = {r: c for r, c in runs.items() if c.steps}
  if not live:
    return np.zeros(0), [np.zeros(0) for _ in columns]
  if len(live) == 1:
    (curve,) = live.values()
    steps = np.asarray(curve.steps)
  else:
    steps = np.unique(
      np.concatenate([np.asarray(c.steps) for c in live.values()])
    )
  out = []
  for run, key in columns:
    curve = live.get(run)
    column = np.full(len(steps), np.nan)
    if curve is not None and key in curve.values:
      x = np.asarray(curve.steps)
      inside = (steps >= x[0]) & (steps <= x[-1])
      column[inside] = np.interp(
        steps[inside], x, np.asarray(curve.values[key])
      )
    out.append(column)
  return steps, out


def y_range(
  values: Sequence[np.ndarray], divisor: float
) -> Optional[Tuple[float, float]]:
  """A fixed y range for a chart whose columns hold NaN (None: none do):
  the data's range widened to whole steps of a round size, with room, and
  never empty (a flat line stays inside it)."""
  if not any(np.isnan(v).any() for v in values):
    return None
  finite = np.concatenate([v[np.isfinite(v)] for v in values])
  if not len(finite):
    return (0.0, 1.0)
  lo, hi = float(finite.min()) / divisor, float(finite.max()) / divisor
  span = max(hi - lo, abs(hi) * 0.1, 1e-9)
  step = 10.0 ** np.floor(np.log10(span))
  step *= 5 if span / step > 5 else (2 if span / step > 2 else 1)
  low, high = np.floor(lo / step) * step, np.ceil(hi / step) * step
  if high - low < step:  # a flat line on a round number
    low, high = low - step, high + step
  return (float(low), float(high))


def unit(largest: float) -> Tuple[float, str]:
  """``(divisor, suffix)`` that keeps numbers up to ``largest`` short."""
  if not np.isfinite(largest):
    return 1.0, ""
  if largest >= 1e6:
    return 1e6, "M"
  if largest >= 1e4:
    return 1e3, "k"
  return 1.0, ""


def labels(columns: Sequence[Column]) -> List[str]:
  """Legend labels: ``run · metric`` (the metric alone for the unnamed
  run), ``eval/episode_reward`` -> ``episode_reward`` where that stays
  unique."""
  full = [key if run is None else f"{run} · {key}" for run, key in columns]
  short = [
    key.split("/", 1)[-1] if run is None else f"{run} · {key.split('/', 1)[-1]}"
    for run, key in columns
  ]
  return [s if short.count(s) == 1 else f for s, f in zip(short, full)]
