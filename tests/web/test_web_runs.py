"""Several runs in one page, in real headless Chromium.

Two runs connect to one viewer server (``braxviewer.connect``, fed by hand:
no JAX) with different robots. The page lists both in its Run dropdown,
shows the one chosen there (its robot, its number of envs) and overlays
both runs' training curves in one chart.
"""

from __future__ import annotations

import io
import threading
import time

import mujoco
import numpy as np
from PIL import Image
import pytest

import braxviewer
from braxviewer.core.frames import FrameChunk
from braxviewer.core.protocol import Mode, StreamInfo
from braxviewer.remote.server import ViewerServer
from braxviewer.testing.factories import stream_info

PENDULUM_XML = """
<mujoco>
  <worldbody>
    <light pos="0 0 3"/>
    <body pos="0 0 .5">
      <joint type="hinge" axis="0 1 0"/>
      <geom type="capsule" fromto="0 0 0 0 0 -.4" size=".04"
            rgba=".9 .3 .1 1"/>
    </body>
  </worldbody>
</mujoco>
"""


def _info(n: int, nq: int) -> StreamInfo:
  return stream_info(n, nq=nq, dt=0.05)


def _feed(viewer, n: int, nq: int, slope: float, stop: threading.Event):
  seq = 0
  while not stop.is_set():
    t = np.arange(10)[:, None, None] + seq * 10
    qpos = np.sin(0.2 * t + np.arange(n)[None, :, None]) * np.ones((1, 1, nq))
    zeros = np.zeros((10, n))
    viewer.on_chunk(
      FrameChunk(
        seq=seq,
        source="train",
        env_steps=(seq + 1) * 10 * n,
        dt=0.05,
        reward=zeros,
        done=zeros,
        truncation=zeros,
        metrics={},
        wall_time=time.time(),
        qpos=qpos.astype(np.float32),
      )
    )
    viewer.on_progress(
      (seq + 1) * 10 * n, {"eval/episode_reward": slope * (seq + 1)}
    )
    seq += 1
    time.sleep(0.1)


@pytest.fixture
def two_runs(puck_model):
  server = ViewerServer(port=0).run()
  stop = threading.Event()
  address = f"127.0.0.1:{server.port}"
  a = braxviewer.connect(address, run="puck run")
  b = braxviewer.connect(address, run="pendulum run")
  pendulum = mujoco.MjModel.from_xml_string(PENDULUM_XML)
  feeders = []
  for viewer, model, n in ((a, puck_model, 4), (b, pendulum, 9)):
    viewer.init(model)
    assert viewer.wait_connected(10)
    viewer.on_stream_start(_info(n, model.nq))
    slope = 1.0 if viewer is a else 3.0
    feeders.append(
      threading.Thread(
        target=_feed, args=(viewer, n, model.nq, slope, stop), daemon=True
      )
    )
  for f in feeders:
    f.start()
  yield server
  stop.set()
  for f in feeders:
    f.join(5)
  a.close()
  b.close()
  server.close()


def _colours(chart, rgb: tuple) -> int:
  """Pixels of colour ``rgb`` in the chart's canvas (0 while the chart is
  being made anew)."""
  try:
    png = chart.locator("canvas").first.screenshot(timeout=5000)
  except Exception:
    return 0
  pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
  return int((np.abs(pixels.astype(int) - rgb).sum(-1) < 60).sum())


def test_the_page_lists_both_runs_shows_the_chosen_one_and_overlays_curves(
  two_runs, page, open_page, wait_until
):
  server = two_runs
  assert wait_until(lambda: len(server.runs.all()) == 2, timeout=10)
  assert wait_until(lambda: server.shown_run is not None, timeout=10)
  open_page(page, server.url)
  page.get_by_role("tab", name="Live").click()
  run_box = page.get_by_role("combobox", name="Run")
  run_box.wait_for(timeout=20000)
  assert wait_until(lambda: server.mode == Mode.LIVE, timeout=10)
  for name, envs in (("pendulum run", 9), ("puck run", 4)):
    run_box.click()
    page.get_by_role("option", name=name, exact=True).click()
    assert wait_until(lambda n=name: server.shown_run == n, timeout=10)
    assert wait_until(
      lambda e=envs: server.page is not None and server.page.num_envs == e,
      timeout=20,
    )
    assert wait_until(lambda n=name: n in page.inner_text("body"), 10)
    # the chosen run's chunks play: its timeline, not the other's
    assert wait_until(
      lambda e=envs: (
        len(server.playback.timeline) > 0
        and server.playback.timeline[-1].num_envs == e
      ),
      timeout=10,
    )
  page.get_by_role("tab", name="Training").click()
  chart = page.locator(".uplot").filter(has_text="Eval reward")
  chart.wait_for(timeout=20000)
  for label in ("puck run · episode_reward", "pendulum run · episode_reward"):
    assert wait_until(lambda t=label: chart.get_by_text(t).count() > 0, 20)
  # both lines are drawn (the palette's first two colours)
  assert wait_until(
    lambda: (
      min(
        _colours(chart, (31, 119, 180)),
        _colours(chart, (214, 39, 40)),
      )
      > 50
    ),
    timeout=30,
  )


_CHARTS_JS = """() => [...document.querySelectorAll('.uplot')].map(u => ({
  title: u.querySelector('.u-title').textContent,
  lines: Object.fromEntries([...u.querySelectorAll('.u-legend .u-series')]
    .slice(1).map(s => [s.querySelector('.u-label').textContent,
      getComputedStyle(s.querySelector('.u-marker')).borderColor])),
}))"""
# Every frame: the narrowest chart (a chart made anew is drawn at zero width
# for a moment, its legend and title stacked up).
_NARROWEST_JS = """() => { window.narrowest = Infinity; const look = () => {
  for (const u of document.querySelectorAll('.uplot'))
    narrowest = Math.min(narrowest, u.getBoundingClientRect().width);
  requestAnimationFrame(look); }; look(); }"""
_ORDER = ["Eval reward", "Episode length", "Env steps / s", "Losses"]
# Each chart's x range and its data's (viser's uPlot keeps the x range as a
# fraction of the data's: a chart re-made with new data could lose it).
_X_JS = """() => Object.values(window.__viserTestpoints.uplots).map(t => {
  const c = t.chart, x = c.data[0];
  return [c.scales.x.min, c.scales.x.max, x[0], x[x.length - 1]]; })"""


def _whole_x(page) -> bool:
  """Every chart shows its data's whole x range."""
  ranges = page.evaluate(_X_JS)
  return len(ranges) == 4 and all(
    lo is not None and abs(lo - first) + abs(hi - last) <= 1e-6 * last
    for lo, hi, first, last in ranges
  )


def _report(viewer, steps: int, slope: float) -> None:
  """One report of every chart's metrics, the training ones first."""
  viewer.on_progress(steps, {"training/policy_loss": slope / steps})
  viewer.on_progress(steps, {"training/v_loss": 2 * slope / steps})
  viewer.on_progress(steps, {"training/sps": 1000.0 * slope})
  viewer.on_progress(
    steps,
    {"eval/episode_reward": slope * steps, "eval/avg_episode_length": 100.0},
  )


def _run_colours(charts, run: str) -> set:
  """The colours of ``run``'s lines over every chart."""
  return {
    colour
    for chart in charts
    for label, colour in chart["lines"].items()
    if label.startswith(run + " · ")
  }


def test_charts_keep_their_order_eval_first_and_each_run_its_colour(
  puck_model, page, open_page, wait_until
):
  server = ViewerServer(port=0).run()
  address = f"127.0.0.1:{server.port}"
  a = braxviewer.connect(address, run="run a")
  b = braxviewer.connect(address, run="run b")
  try:
    for viewer in (a, b):
      viewer.init(puck_model)
      assert viewer.wait_connected(10)
      viewer.on_stream_start(_info(2, puck_model.nq))
    for i in range(1, 6):
      _report(a, 1000 * i, 1.0)
    open_page(page, server.url)
    page.get_by_role("tab", name="Training").click()
    assert wait_until(lambda: len(page.evaluate(_CHARTS_JS)) == 4, 20)
    before = page.evaluate(_CHARTS_JS)
    assert [c["title"] for c in before] == _ORDER
    (colour_a,) = _run_colours(before, "run a")  # one colour, every chart
    page.evaluate(_NARROWEST_JS)
    _report(b, 500, 3.0)  # run b's first report
    for i in range(6, 13):  # past 10k env steps: the x axis in thousands
      _report(a, 1000 * i, 1.0)

    def both_shown() -> bool:
      charts = page.evaluate(_CHARTS_JS)
      return all(_run_colours([c], "run b") for c in charts)

    assert wait_until(both_shown, 20)
    after = page.evaluate(_CHARTS_JS)
    assert [c["title"] for c in after] == _ORDER  # nothing moved
    (colour_b,) = _run_colours(after, "run b")
    assert _run_colours(after, "run a") == {colour_a} != {colour_b}
    assert list(after[-1]["lines"]) == [  # appended, run a's stay first
      "run a · policy_loss",
      "run a · v_loss",
      "run b · policy_loss",
      "run b · v_loss",
    ]
    assert page.evaluate("narrowest") > 200  # no chart collapsed meanwhile
    assert wait_until(lambda: _whole_x(page), 20)
  finally:
    a.close()
    b.close()
    server.close()
