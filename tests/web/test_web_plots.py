"""The page's charts and the data behind them: per-env traces, training
curves' groups, the env chart's fixed x axis, and the status rates. No
browser (the charts in a page: test_web_page.py)."""

from __future__ import annotations

import contextlib

import numpy as np

from braxviewer.web.meters import Average, RateMeter
from braxviewer.web.plots import TraceChart, group_of
from braxviewer.web.traces import EnvTraces


def test_env_traces_stay_bounded_and_count_returns_and_resets():
  tr = EnvTraces(num_envs=3, window=50)
  for i in range(500):
    tr.push(
      i * 0.1,
      np.full(3, 1.0),
      np.array([i % 100 == 99, 0, 0]),
      {"a": np.full(3, 2.0)},
    )
  labels, data = tr.series(0)
  assert labels == ("reward", "a", "reset")
  assert all(len(d) == 50 for d in data)
  assert np.all(np.diff(data[0]) > 0)
  assert tr.resets[0] == 5 and tr.last_return[0] == 100.0


def test_progress_keys_go_to_their_chart_and_eval_speed_is_not_training_speed():
  assert group_of("eval/episode_reward") == "Eval reward"
  assert group_of("training/sps") == "Env steps / s"
  assert group_of("eval/sps") is None  # eval rollouts' speed, not training's
  assert group_of("training/policy_loss") == "Losses"
  assert group_of("eval/walltime") is None


def test_rates_count_what_came_after_the_first_event_and_decay(clock):
  frames = RateMeter(window=3.0, clock=clock)
  assert frames.rate() == 0.0
  for _ in range(61):  # 30 frames/s for 2 s
    frames.add()
    clock.t += 1 / 30
  assert abs(frames.rate() - 30.0) < 0.6
  steps = RateMeter(window=20.0, clock=clock)
  for _ in range(5):  # 5120 env steps every 0.5 s: 10240/s
    clock.t += 0.5
    steps.add(5120)
  assert steps.rate() == 10240.0  # the first report's steps came before it
  clock.t += 0.5
  assert steps.rate() < 10240.0  # no report since: it decays
  clock.t += 100.0  # nothing since: back to 0
  assert steps.rate() == 0.0 and frames.rate() == 0.0
  steps.add(1.0)
  steps.clear()
  assert steps.rate() == 0.0
  mean = Average(window=3.0, clock=clock)
  assert mean.mean() is None
  for v in (1.0, 2.0, 3.0):
    mean.add(v)
  assert mean.mean() == 2.0
  clock.t += 10.0
  assert mean.mean() == 3.0  # none recent: the last one


class _FakeChart:
  def __init__(self, data, scales):
    self.data, self.scales, self.removed = data, scales, False

  def remove(self):
    self.removed = True


class _FakeGui:
  def __init__(self):
    self.charts = []

  def add_uplot(self, data, series, scales, **kwargs):
    del series, kwargs
    self.charts.append(_FakeChart(data, scales))
    return self.charts[-1]


def test_env_chart_x_axis_stays_put_while_time_moves_on():
  """viser's uPlot keeps the x range a chart was made with (e.g. in a hidden
  tab): the env chart's x data must stay inside one fixed range, or a moving
  window scrolls out of it and the chart shows nothing."""
  gui = _FakeGui()
  chart = TraceChart(gui, contextlib.nullcontext())
  traces = EnvTraces(num_envs=1)
  for i in range(2000):  # 100 s of sim time at 0.05 s, window 300 frames
    traces.push(i * 0.05, np.ones(1), np.zeros(1), {"a": np.zeros(1)})
    if i % 97 == 1:
      chart.show(*traces.series(0))
  (made,) = gui.charts  # made once, then only its data changes
  x_scale = made.scales["x"]
  lo, hi = x_scale["range"]
  assert x_scale["auto"] is False and (lo, hi) == (1.0 - traces.window, 0.0)
  x = np.asarray(made.data[0])
  assert len(x) == traces.window and x[0] >= lo and x[-1] == hi
