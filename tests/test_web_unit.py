"""Web viewer without a browser: pacing, ports, models, panels' data, protocol.

Fast (a few seconds): no Chromium, no JAX. The page itself is tested in
test_web_page.py, faults in test_web_faults.py.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
import warnings

import mujoco
import numpy as np
import pytest

from braxviewer import WebViewer, WebViewerBatched
from braxviewer.frames import FrameChunk
from braxviewer import timeline
from braxviewer.protocol import Mode, StreamInfo, TrainingViewer
from braxviewer.timeline import RecentChunks
from braxviewer.web import tiled
from braxviewer.web.errors import PortInUseError, ViewerWarning
from braxviewer.web.model_source import resolve_model
from braxviewer.web.pacing import Player
from braxviewer.web.plots import group_of
from braxviewer.web.server import pick_port
from braxviewer.web.synthetic import PUCK_XML
from braxviewer.web.traces import EnvTraces


def chunk(t=10, n=2, nq=8, dt=0.01, seq=0, source="train", steps=0):
  return FrameChunk(
      seq=seq, source=source, env_steps=steps, dt=dt,
      reward=np.ones((t, n)), done=np.zeros((t, n)),
      truncation=np.zeros((t, n)), metrics={"r": np.zeros((t, n))},
      wall_time=time.time(), qpos=np.zeros((t, n, nq)))


class Clock:
  def __init__(self):
    self.t = 100.0

  def __call__(self):
    return self.t


# -- pacing --------------------------------------------------------------------


def test_live_plays_newest_at_real_time_and_counts_drops():
  clock = Clock()
  p = Player(clock=clock)
  for i in range(3):
    assert p.offer(chunk(seq=i), sync=False) is None  # never a ticket in live
  assert p.counters.chunks_dropped == 2 and p.counters.frames_dropped == 20
  entry, index = p.tick()
  assert entry.chunk.seq == 2 and index == 0
  assert p.tick() is None  # same frame until dt has passed
  clock.t += 0.0105
  assert p.tick()[1] == 1
  clock.t += 0.05  # the page was slow: frames 2..5 skipped, counted
  assert p.tick()[1] == 6
  assert p.counters.frames_dropped == 20 + 4
  assert p.counters.frames_shown == 3


def test_sync_shows_every_frame_then_releases():
  clock = Clock()
  p = Player(clock=clock)
  ticket = p.offer(chunk(t=3), sync=True)
  assert ticket is not None and not ticket.released
  shown = []
  for _ in range(10):
    clock.t += 1.0  # far behind real time: sync still shows every frame
    frame = p.tick()
    if frame:
      shown.append(frame[1])
  assert shown == [0, 1, 2]
  assert ticket.released
  assert p.counters.frames_dropped == 0


def test_speed_pause_and_source():
  clock = Clock()
  p = Player(clock=clock)
  p.offer(chunk(t=100, dt=0.1), sync=False)
  assert p.tick()[1] == 0
  p.set_speed(2.0)
  clock.t += 0.1
  assert p.tick()[1] == 2
  p.set_paused(True)
  clock.t += 5.0
  assert p.tick() is None
  p.set_paused(False)
  clock.t += 0.05
  assert p.tick()[1] == 3
  p.set_source("eval")
  assert p.offer(chunk(source="train"), sync=True) is None  # not on display
  assert p.counters.chunks_skipped == 1
  for bad in (0, -1, float("nan"), float("inf")):
    with pytest.raises(ValueError):
      p.set_speed(bad)


def test_recent_chunks_keep_the_newest_with_stable_positions():
  recent = RecentChunks(max_chunks=4)
  positions = [recent.append(chunk(seq=i, steps=100 * i)) for i in range(10)]
  assert positions == list(range(10))
  kept = recent.chunks("train")
  assert (kept.start, len(kept), kept.end) == (6, 4, 10)
  assert [c.seq for c in kept] == [6, 7, 8, 9]
  assert list(kept.env_steps) == [600, 700, 800, 900]
  assert kept.nearest(740) == 1 and kept[-1].seq == 9
  recent.append(chunk(seq=10, steps=1000))
  assert [c.seq for c in kept] == [6, 7, 8, 9]  # a snapshot does not move
  assert recent.chunks("train").start == 7
  assert len(recent.chunks("eval")) == 0
  with pytest.raises(IndexError, match="4 train chunks"):
    kept[4]  # pylint: disable=pointless-statement
  # the byte bound drops the oldest, but keeps the newest of each source
  size = timeline.chunk_nbytes(chunk())
  small = RecentChunks(max_chunks=100, max_bytes=3 * size)
  for i in range(5):
    small.append(chunk(seq=i))
  small.append(chunk(seq=0, source="eval"))
  assert small.nbytes <= 3 * size
  assert [c.seq for c in small.chunks("train")] == [3, 4]
  assert len(small.chunks("eval")) == 1
  with pytest.raises(ValueError, match="max_chunks"):
    RecentChunks(max_chunks=0)


def _played(p, clock, ticks=200, step=0.01):
  """(seq, frame) of every frame drawn over ``ticks`` clock steps."""
  out = []
  for _ in range(ticks):
    frame = p.tick()
    if frame is not None:
      out.append((frame[0].chunk.seq, frame[1]))
    clock.t += step
  return out


def test_review_jumps_back_plays_on_in_order_then_follows_training_again():
  clock = Clock()
  p = Player(clock=clock)
  for i in range(5):  # live: only the newest plays, all five are kept
    p.offer(chunk(t=3, seq=i, steps=10 * i), sync=False)
  assert p.tick()[0].chunk.seq == 4 and p.cursor == 4
  entry, index = p.jump(1)
  assert (entry.chunk.seq, index) == (1, 0) and not p.following
  assert not entry.from_feed
  p.offer(chunk(t=3, seq=5, steps=50), sync=False)  # kept, not shown now
  assert p.counters.chunks_dropped == 4 + 1
  # the review plays on in stream order: 1, 2, 3, 4, 5, then rejoins the feed
  seen = _played(p, clock, ticks=300)
  order = [s for s, f in seen if f == 0]
  assert order[:4] == [2, 3, 4, 5], seen
  assert p.following
  p.offer(chunk(t=3, seq=6, steps=60), sync=False)
  assert p.tick()[0].chunk.seq == 6 and p.tick() is None


def test_review_holds_a_sync_trainer_until_live_again():
  clock = Clock()
  p = Player(clock=clock)
  p.offer(chunk(t=2, seq=0), sync=False)
  p.tick()
  p.set_paused(True)
  p.jump(0)
  assert p.paused  # jumping keeps the pause state
  ticket = p.offer(chunk(t=2, seq=1), sync=True)
  clock.t += 1.0
  assert p.tick() is None and not ticket.released
  p.go_live()  # follows the trainer again, and resumes
  assert not p.paused and p.following
  seen = _played(p, clock, ticks=50)
  assert (1, 0) in seen and (1, 1) in seen
  assert ticket.released


def test_review_loops_and_repeats_and_switches_source_by_env_steps():
  clock = Clock()
  recent = RecentChunks()
  for i in range(3):
    recent.append(chunk(t=2, seq=i, steps=100 * i))
    recent.append(chunk(t=2, seq=i, steps=100 * i + 40, source="eval"))
  p = Player(recent, live=False, loop=True, clock=clock)  # as replay does
  seen = [s for s, f in _played(p, clock, ticks=100) if f == 0]
  assert seen[:5] == [0, 1, 2, 0, 1]  # from the start, looping
  p.jump(1)
  p.repeat = True
  seen = [s for s, f in _played(p, clock, ticks=100) if f == 0]
  assert set(seen) == {1}
  p.repeat = False
  p.set_source("eval")  # on screen: train chunk 1 (100 steps) -> eval 140
  frame = _played(p, clock, ticks=1)
  assert frame == [(1, 0)] and p.timeline.source == "eval"
  p.loop = False
  p.jump(2)
  assert [s for s, f in _played(p, clock, ticks=100) if f == 0] == []
  assert p.tick() is None and not p.following  # replay never follows


def test_meters_and_traces_stay_bounded():
  tr = EnvTraces(num_envs=3, window=50)
  for i in range(500):
    tr.push(i * 0.1, np.full(3, 1.0), np.array([i % 100 == 99, 0, 0]),
            {"a": np.full(3, 2.0)})
  labels, data = tr.series(0)
  assert labels == ("reward", "a", "reset")
  assert all(len(d) == 50 for d in data)
  assert np.all(np.diff(data[0]) > 0)
  assert tr.resets[0] == 5 and tr.last_return[0] == 100.0
  assert group_of("eval/episode_reward") == "Eval reward"
  assert group_of("training/sps") == "Env steps / s"
  assert group_of("training/policy_loss") == "Losses"
  assert group_of("eval/walltime") is None


# -- models --------------------------------------------------------------------


class _BraxLike:
  class sys:  # noqa: N801
    mj_model = mujoco.MjModel.from_xml_string(PUCK_XML)


class _PlaygroundLike:
  mj_model = mujoco.MjModel.from_xml_string(PUCK_XML)


def test_resolve_model_sources(tmp_path):
  path = tmp_path / "m.xml"
  path.write_text(PUCK_XML)
  for source in (_BraxLike(), _PlaygroundLike(), PUCK_XML, str(path), path,
                 _PlaygroundLike.mj_model):
    assert resolve_model(source).nq == 8
  with pytest.raises(TypeError, match="mj_model"):
    resolve_model(object())


def test_tiled_model_from_concatenate_envs_xml_maps_back():
  xml = WebViewerBatched.concatenate_envs_xml(PUCK_XML, 4, (2, 2, 1),
                                              (1.0, 1.0, 1.0))
  big = mujoco.MjModel.from_xml_string(xml)
  single, copies = tiled.untile(big)
  assert copies == 4 and single.nq == 8
  assert tiled.prefixed_copies(big) == 4
  assert tiled.copies_by_width(big, 8) == 4
  assert tiled.copies_by_width(single, 8) == 1


# -- ports -----------------------------------------------------------------------


def test_busy_port_is_named_or_skipped():
  with socket.socket() as busy:
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    with pytest.raises(PortInUseError, match=str(port)):
      pick_port("127.0.0.1", port, fallback=False)
    assert pick_port("127.0.0.1", port, fallback=True) > port


def test_viewer_on_busy_port_raises_clear_error_or_falls_back(capsys):
  with socket.socket() as busy:
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    with pytest.raises(PortInUseError, match=f"port {port}"):
      WebViewer(port=port).run()
    with WebViewer(port=port, port_fallback=True) as viewer:
      assert viewer.port != port and str(viewer.port) in viewer.url
  assert f"port {port} is in use" in capsys.readouterr().err


def test_public_host_warns_no_auth():
  with pytest.warns(ViewerWarning, match="no authentication"):
    viewer = WebViewer(host="0.0.0.0", port=0).run()
  viewer.close()


# -- the protocol, without a page --------------------------------------------------


def test_is_a_training_viewer_and_original_api():
  from braxviewer.WebViewerBatched import WebViewerBatched as FromModule
  assert FromModule is WebViewerBatched
  v = WebViewerBatched(grid_dims=(4, 2, 1), env_offset=(4.0, 4.0, 2.0))
  assert isinstance(v, TrainingViewer) and v.requested_envs() == 8
  assert WebViewer().requested_envs() == 1
  assert WebViewerBatched().requested_envs() is None
  assert v.mode == Mode.OFF  # nothing to draw before init()


def test_web_side_imports_no_jax():
  code = ("import sys, braxviewer.web.viewer, braxviewer.WebViewerBatched,"
          " braxviewer.web.render, braxviewer.web.panels;"
          " print('jax' in sys.modules)")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                       text=True, check=True)
  assert out.stdout.strip() == "False"


@pytest.fixture
def running_viewer():
  viewer = WebViewerBatched(num_envs=2, port=0, env_offset=(1.0, 1.0, 1.0))
  viewer.run()
  viewer.init(PUCK_XML)
  info = StreamInfo(num_envs=2, num_train_envs=2, envs_per_device=2,
                    kind="qpos", nq=8, num_links=None, dt=0.01,
                    chunk_length=10, reward_terms=("r",))
  viewer.on_stream_start(info)
  yield viewer
  viewer.close()


def test_live_never_blocks_and_sync_waits_until_shown(running_viewer):
  v = running_viewer
  assert v.mode == Mode.LIVE
  started = time.monotonic()
  for i in range(200):
    v.on_chunk(chunk(seq=i))
  assert time.monotonic() - started < 0.5
  v.set_mode("sync")
  started = time.monotonic()
  v.on_chunk(chunk(t=10, dt=0.03, seq=300))  # 10 frames of 30 ms
  waited = time.monotonic() - started
  assert 0.25 < waited < 3.0
  assert v.stats()["frames_shown"] >= 10


def test_sync_wait_ends_on_mode_change_and_close(running_viewer):
  v = running_viewer
  v.set_mode("sync")
  v.set_paused(True)  # nothing is shown: the producer would wait forever
  done = threading.Event()
  worker = threading.Thread(
      target=lambda: (v.on_chunk(chunk(t=5, dt=0.05)), done.set()))
  worker.start()
  assert not done.wait(0.4)
  v.set_mode("live")
  assert done.wait(1.0)
  v.set_mode("sync")
  done.clear()
  worker = threading.Thread(
      target=lambda: (v.on_chunk(chunk(t=5, dt=0.05, seq=1)), done.set()))
  worker.start()
  assert not done.wait(0.3)
  v.close()
  assert done.wait(1.0)
  assert v.mode == Mode.OFF


def test_wrong_model_turns_streaming_off_with_one_warning():
  v = WebViewerBatched(num_envs=2, port=0)
  with v:
    v.init(PUCK_XML)
    info = StreamInfo(num_envs=2, num_train_envs=2, envs_per_device=2,
                      kind="qpos", nq=5, num_links=None, dt=0.01,
                      chunk_length=10, reward_terms=())
    with pytest.warns(ViewerWarning, match="nq=8"):
      v.on_stream_start(info)
    assert v.mode == Mode.OFF


def test_tiled_env_from_original_usage_is_detected(recwarn):
  xml = WebViewerBatched.concatenate_envs_xml(PUCK_XML, 4, (2, 2, 1),
                                              (1.0, 1.0, 1.0))
  with WebViewerBatched(grid_dims=(2, 2, 1), env_offset=(1.0, 1.0, 1.0),
                        port=0) as v:
    v.init(xml)
    assert v._model.nq == 8  # pylint: disable=protected-access
  messages = [str(w.message) for w in recwarn if w.category is ViewerWarning]
  assert len(messages) == 1 and "concatenate_envs_xml" in messages[0]


def test_live_cuts_a_long_chunk_when_a_newer_one_waits():
  clock = Clock()
  p = Player(clock=clock, max_hold=1.0)
  p.offer(chunk(t=1000, dt=0.01, seq=0), sync=False)
  assert p.tick()[0].chunk.seq == 0
  clock.t += 0.5
  assert p.tick()[0].chunk.seq == 0  # nothing newer: keeps playing
  p.offer(chunk(t=1000, dt=0.01, seq=1), sync=False)
  clock.t += 0.6  # held 1.1 s with a newer chunk waiting: switch
  entry, index = p.tick()
  assert entry.chunk.seq == 1 and index == 0
  assert p.counters.frames_dropped == 998  # 1000 - the 2 frames shown


def test_chunks_of_another_env_count_fit_the_scene(running_viewer):
  from braxviewer.web.viewer import fit_envs
  wide = fit_envs(chunk(t=3, n=5), 2)
  narrow = fit_envs(chunk(t=3, n=1), 2)
  assert wide.qpos.shape == (3, 2, 8) and narrow.qpos.shape == (3, 2, 8)
  assert np.isnan(narrow.qpos[:, 1]).all() and narrow.reward[0, 1] == 0
  v = running_viewer
  v.set_source("eval")
  v.set_mode("sync")
  v.on_chunk(chunk(t=3, n=4, source="eval", dt=0.01))  # shown, not stuck
  assert v.stats()["frames_shown"] >= 3 and v.failed is None


def test_drawn_shapes_sit_where_mujoco_puts_the_geoms():
  import os
  import brax
  from braxviewer.scene import BatchedScene
  from braxviewer.web.primitives import Parts, quat_rotate
  path = os.path.join(os.path.dirname(brax.__file__), "envs/assets/ant.xml")
  model = mujoco.MjModel.from_xml_path(path)
  scene = BatchedScene(model, 3, env_offset=(2.0, 2.0, 2.0))
  rng = np.random.default_rng(1)
  qpos = np.tile(model.qpos0, (3, 1)) + rng.normal(0, 0.3, (3, model.nq))
  poses = scene.poses_from_qpos(qpos)
  parts = Parts(model)
  drawn = {}  # geom centre -> count, from every shape's instances
  for shape in parts.shapes:
    pos, quat = parts.poses(shape, poses.xpos, poses.xquat)
    axis = quat_rotate(quat, np.array([0.0, 0.0, 1.0]))
    drawn[shape.kind] = (pos.reshape(3, -1, 3), axis.reshape(3, -1, 3))
  data = mujoco.MjData(model)
  for env in range(3):
    data.qpos[:] = qpos[env]
    mujoco.mj_kinematics(model, data)
    want = data.geom_xpos[model.geom_type != 0] + scene.offsets[env]
    got = np.concatenate([p[env] for p, _ in drawn.values()])
    # every drawn centre is a MuJoCo geom centre (to 1e-9 m), and all are drawn
    near = np.linalg.norm(got[:, None] - want[None], axis=-1)
    assert near.min(axis=1).max() < 1e-9 and len(got) == len(want)
    # ... and points its axis the way MuJoCo orients the geom
    axes = np.concatenate([a[env] for _, a in drawn.values()])
    want_axes = data.geom_xmat.reshape(-1, 3, 3)[model.geom_type != 0, :, 2]
    match = want_axes[near.argmin(axis=1)]
    assert np.allclose(np.abs(np.sum(axes * match, axis=1)), 1.0, atol=1e-9)


def test_timeline_scrubs_back_during_training_and_goes_live(running_viewer):
  v = running_viewer
  v.set_source("train")
  for i in range(3):
    v.on_chunk(chunk(t=5, dt=0.01, seq=100 + i, steps=1000 * i))
    time.sleep(0.15)
  kept = v.timeline()
  assert [c.seq for c in kept][-3:] == [100, 101, 102]
  drawn = v.update_seconds._count.rate()  # pylint: disable=protected-access
  v.set_paused(True)
  v.jump(-3)
  assert v.reviewing and v._player.cursor == kept.end - 3  # pylint: disable=protected-access
  v.step_chunk(+1)
  assert v._player.cursor == kept.end - 2  # pylint: disable=protected-access
  v.jump_to_steps(2100)
  assert v._player.last_frame[0].chunk.seq == 102  # pylint: disable=protected-access
  v.set_speed(2.0)
  v.go_live()
  assert not v.reviewing and not v._player.paused  # pylint: disable=protected-access
  for preset in ("top", "side", "front", "follow"):
    v.apply_camera(preset)
  assert v._follow  # pylint: disable=protected-access
  v.set_show_only(True)
  v.select_env(1)
  assert v.selected_env == 1 and v.failed is None and drawn >= 0
  with pytest.raises(ValueError, match="history"):
    WebViewerBatched(history=0)


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
  import contextlib  # pylint: disable=import-outside-toplevel
  from braxviewer.web.plots import TraceChart  # pylint: disable=import-outside-toplevel
  gui = _FakeGui()
  chart = TraceChart(gui, contextlib.nullcontext())
  traces = EnvTraces(num_envs=1)
  for i in range(2000):  # 100 s of sim time at 0.05 s, window 300 frames
    traces.push(i * 0.05, np.ones(1), np.zeros(1), {"a": np.zeros(1)})
    if i % 97 == 1:
      chart.show(*traces.series(0))
  made, = gui.charts  # made once, then only its data changes
  x_scale = made.scales["x"]
  lo, hi = x_scale["range"]
  assert x_scale["auto"] is False and (lo, hi) == (1.0 - traces.window, 0.0)
  x = np.asarray(made.data[0])
  assert len(x) == traces.window and x[0] >= lo and x[-1] == hi


@pytest.mark.parametrize("num_envs", [1, 4, 16, 64])
def test_grid_presets_show_every_env_whole_beside_the_panel(num_envs):
  from braxviewer.grid import grid_offsets
  from braxviewer.web.camera import Page, preset
  width, height, panel_px = 1280, 800, 320
  page = Page.of(np.radians(75), width, height, panel_px)
  extent = 1.1
  roots = grid_offsets(num_envs, env_offset=(3.0, 3.0, 0.0)) + [0, 0, 0.6]
  for name in ("top", "side", "front", "overview"):
    position, look_at, up = preset(name, roots, 0, extent, page)
    forward = (look_at - position) / np.linalg.norm(look_at - position)
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    cam_up = np.cross(right, forward)
    tan_y = np.tan(np.radians(75) / 2)
    tan_x = tan_y * width / height
    xs, ys = [], []
    for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):  # each env's rim
      p = roots + extent * (dx * right + dy * cam_up) - position
      depth = p @ forward
      assert np.all(depth > 0)
      xs.append(width / 2 * (1 + (p @ right) / (depth * tan_x)))
      ys.append(height / 2 * (1 - (p @ cam_up) / (depth * tan_y)))
    xs, ys = np.concatenate(xs), np.concatenate(ys)
    assert xs.min() >= 0 and xs.max() <= width - panel_px, name
    assert ys.min() >= 0 and ys.max() <= height, name
    # ... and as large as fits: the envs fill most of the free part one way
    fill = max((xs.max() - xs.min()) / (width - panel_px),
               (ys.max() - ys.min()) / height)
    assert fill > 0.7, (name, fill)
