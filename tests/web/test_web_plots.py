"""The page's charts and the data behind them: per-env traces, training
curves' groups, the env chart's fixed x axis, and the status rates. No
browser (the charts in a page: test_web_page.py)."""

from __future__ import annotations

import contextlib

import numpy as np

from braxviewer.web.curves import DASHES, GROUPS, y_range
from braxviewer.web.meters import Average, RateMeter
from braxviewer.web.plots import ProgressCurves, TraceChart, group_of
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
  def __init__(self, data, series, scales, title="", order=None):
    self.data, self.series, self.scales = data, series, scales
    self.title, self.order, self.removed = title, order, False

  def remove(self):
    self.removed = True


class _FakeGui:
  def __init__(self):
    self.charts = []

  def add_uplot(self, data, series, scales, title="", order=None, **kwargs):
    del kwargs
    self.charts.append(_FakeChart(data, series, scales, title, order))
    return self.charts[-1]

  def add_markdown(self, content):
    return _FakeChart(content, (), None)


def _shown(gui):
  """Chart title -> {legend label: (stroke, dash)}, in page order."""
  charts = sorted(
    (c for c in gui.charts if not c.removed), key=lambda c: c.order
  )
  return {
    c.title: {
      s["label"]: (s["stroke"], s.get("dash", ())) for s in c.series[1:]
    }
    for c in charts
  }


def test_charts_keep_a_fixed_order_eval_first_and_each_run_one_colour():
  gui = _FakeGui()
  curves = ProgressCurves(gui, contextlib.nullcontext())
  # the training metrics come first, eval later: the order does not follow
  curves.add(100, {"training/policy_loss": 0.5, "training/v_loss": 1.0}, "a")
  curves.add(100, {"training/sps": 500.0}, "a")
  curves.refresh()
  curves.add(
    200, {"eval/episode_reward": 1.0, "eval/avg_episode_length": 9}, "a"
  )
  curves.refresh()
  assert list(_shown(gui)) == [title for title, _ in GROUPS]
  assert GROUPS[0][0] == "Eval reward"
  made = list(gui.charts)
  a = curves.colour("a")
  for title, lines in _shown(gui).items():  # run a: one colour everywhere
    assert {stroke for stroke, _ in lines.values()} == {a}, title
  # run a's two losses: same colour, told apart by dash
  assert _shown(gui)["Losses"] == {
    "a · policy_loss": (a, ()),
    "a · v_loss": (a, DASHES[1]),
  }
  # a second run: its own colour in every chart, run a's unchanged; the
  # charts change in place (a chart made anew collapses for a moment)
  curves.add(300, {"eval/episode_reward": 2.0, "training/v_loss": 3.0}, "b")
  curves.add(300, {"training/policy_loss": 0.1, "training/sps": 9.0}, "b")
  series = [c.series for c in made]
  curves.refresh()  # the new data first, its series one refresh later
  assert sorted(len(c.data) for c in made) == [2, 3, 3, 5]
  assert [c.series for c in made] == series
  curves.refresh()
  assert gui.charts == made and not any(c.removed for c in made)
  b = curves.colour("b")
  assert b != a
  shown = _shown(gui)
  assert list(shown) == [title for title, _ in GROUPS]
  assert shown["Eval reward"] == {
    "a · episode_reward": (a, ()),
    "b · episode_reward": (b, ()),
  }
  assert list(shown["Losses"]) == [  # appended as they came
    "a · policy_loss",
    "a · v_loss",
    "b · v_loss",
    "b · policy_loss",
  ]
  assert shown["Env steps / s"]["b · sps"] == (b, ())
  # a run that goes frees its colour for the next; the others keep theirs
  curves.forget("a")
  curves.add(400, {"eval/episode_reward": 3.0}, "c")
  curves.refresh()
  curves.refresh()
  assert curves.colour("c") == a and curves.colour("b") == b
  assert list(_shown(gui)["Eval reward"]) == [
    "b · episode_reward",
    "c · episode_reward",
  ]


def test_an_overlaid_flat_curve_gets_a_y_range_it_fits_in():
  values = [
    np.array([1000.0, 1000.0, np.nan]),
    np.array([np.nan, 1000.0, 1000.0]),
  ]
  lo, hi = y_range(values, 1.0)
  assert lo < 1000.0 < hi


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
