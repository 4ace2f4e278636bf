"""The web viewer without a browser: the trainer's protocol, live and sync,
bad streams, the page's controls from Python. Fast: no Chromium, no JAX
(the page itself: test_web_page.py; faults: test_web_faults.py)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from braxviewer import WebViewer, WebViewerBatched
from braxviewer.core.frames import fit_envs
from braxviewer.core.protocol import Mode, TrainingViewer
from braxviewer.scene.batched import BatchedScene
from braxviewer.testing.factories import stream_info
from braxviewer.testing.synthetic import PUCK_XML
from braxviewer.web.errors import ViewerWarning


def test_is_a_training_viewer_and_original_api():
  from braxviewer.WebViewerBatched import WebViewerBatched as FromModule

  assert FromModule is WebViewerBatched
  v = WebViewerBatched(grid_dims=(4, 2, 1), env_offset=(4.0, 4.0, 2.0))
  assert isinstance(v, TrainingViewer) and v.requested_envs() == 8
  assert WebViewer().requested_envs() == 1
  assert WebViewerBatched().requested_envs() is None
  assert v.mode == Mode.OFF  # nothing to draw before init()


@pytest.fixture
def running_viewer():
  viewer = WebViewerBatched(num_envs=2, port=0, env_offset=(1.0, 1.0, 1.0))
  viewer.run()
  viewer.init(PUCK_XML)
  info = stream_info(2, reward_terms=("r",))
  viewer.on_stream_start(info)
  yield viewer
  viewer.close()


def test_live_never_blocks_and_sync_waits_until_shown(
  running_viewer, make_chunk
):
  v = running_viewer
  assert v.mode == Mode.LIVE
  started = time.monotonic()
  for i in range(200):
    v.on_chunk(make_chunk(seq=i))
  assert time.monotonic() - started < 0.5
  v.set_mode("sync")
  started = time.monotonic()
  v.on_chunk(make_chunk(t=10, dt=0.03, seq=300))  # 10 frames of 30 ms
  waited = time.monotonic() - started
  assert 0.25 < waited < 3.0
  assert v.stats()["frames_shown"] >= 10


def test_sync_wait_ends_on_mode_change_and_close(running_viewer, make_chunk):
  v = running_viewer
  v.set_mode("sync")
  v.playback.set_paused(
    True
  )  # nothing is shown: the producer would wait forever
  done = threading.Event()
  worker = threading.Thread(
    target=lambda: (v.on_chunk(make_chunk(t=5, dt=0.05)), done.set())
  )
  worker.start()
  assert not done.wait(0.4)
  v.set_mode("live")
  assert done.wait(1.0)
  v.set_mode("sync")
  done.clear()
  worker = threading.Thread(
    target=lambda: (v.on_chunk(make_chunk(t=5, dt=0.05, seq=1)), done.set())
  )
  worker.start()
  assert not done.wait(0.3)
  v.close()
  assert done.wait(1.0)
  assert v.mode == Mode.OFF


def test_wrong_model_turns_streaming_off_with_one_warning():
  v = WebViewerBatched(num_envs=2, port=0)
  with v:
    v.init(PUCK_XML)
    info = stream_info(2, nq=5)
    with pytest.warns(ViewerWarning, match="nq=8"):
      v.on_stream_start(info)
    assert v.mode == Mode.OFF


def test_chunks_of_another_env_count_fit_the_scene(running_viewer, make_chunk):
  wide = fit_envs(make_chunk(t=3, n=5), 2)
  narrow = fit_envs(make_chunk(t=3, n=1), 2)
  assert wide.qpos.shape == (3, 2, 8) and narrow.qpos.shape == (3, 2, 8)
  assert np.isnan(narrow.qpos[:, 1]).all() and narrow.reward[0, 1] == 0
  v = running_viewer
  v.playback.set_source("eval")
  v.set_mode("sync")
  v.on_chunk(make_chunk(t=3, n=4, source="eval", dt=0.01))  # shown, not stuck
  assert v.stats()["frames_shown"] >= 3 and v.failed is None


def test_timeline_scrubs_back_during_training_and_goes_live(
  running_viewer, make_chunk, raw_page, wait_until
):
  v = running_viewer
  v.playback.set_source("train")
  with raw_page(v):  # a page watches: frames are drawn
    assert wait_until(lambda: v.clients() == 1, timeout=10)
    for i in range(3):
      v.on_chunk(make_chunk(t=5, dt=0.01, seq=100 + i, steps=1000 * i))
      time.sleep(0.15)
    drawn = v.stats()["update_s"]
  kept = v.playback.timeline
  assert [c.seq for c in kept][-3:] == [100, 101, 102]
  v.playback.set_paused(True)
  v.playback.jump(-3)
  assert v.playback.reviewing and v.playback.player.cursor == kept.end - 3
  v.playback.step_chunk(+1)
  assert v.playback.player.cursor == kept.end - 2
  v.playback.jump_to_steps(2100)
  assert v.playback.player.last_frame[0].chunk.seq == 102
  v.playback.set_speed(2.0)
  v.playback.go_live()
  assert not v.playback.reviewing and not v.playback.player.paused
  for preset in ("top", "side", "front", "follow"):
    v.page.apply_camera(preset)
  assert v.page.following
  v.page.set_show_only(True)
  v.page.select_env(1)
  assert v.page.selected_env == 1 and v.failed is None and drawn > 0
  with pytest.raises(ValueError, match="history"):
    WebViewerBatched(history=0)


def test_with_no_page_open_nothing_is_posed_or_sent_but_the_timeline_goes_on(
  running_viewer, make_chunk, raw_page, wait_until, monkeypatch
):
  v = running_viewer
  posed = []
  poses = BatchedScene.poses
  monkeypatch.setattr(
    BatchedScene, "poses", lambda self, c: posed.append(c) or poses(self, c)
  )
  for i in range(3):
    v.on_chunk(make_chunk(t=5, dt=0.01, seq=i, steps=100 * i))
    time.sleep(0.1)
  assert wait_until(lambda: v.stats()["frames_shown"] >= 10)
  assert posed == [] and v.stats()["update_s"] is None  # no page: no work
  assert len(v.playback.timeline) == 3
  v.playback.set_paused(True)
  with raw_page(v):  # a page opens on a paused player: it gets the frame
    assert wait_until(lambda: v.stats()["update_s"] is not None, timeout=10)
    assert len(posed) == 1


class _FakeClient:
  """What a page's button click hands the viewer: downloads, notes."""

  def __init__(self):
    self.files, self.notes = [], []

  def send_file_download(self, name, data, **kwargs):
    self.files.append((name, data))

  def add_notification(self, *args, **kwargs):
    self.notes.append(args)


def test_save_clip_sends_the_timeline_as_mp4_of_the_followed_env_or_grid(
  running_viewer, make_chunk, wait_until
):
  v = running_viewer
  client = _FakeClient()
  v.save_clip(client)  # the button's handler: nothing received yet
  assert client.notes and not client.files
  for i in range(3):
    v.on_chunk(make_chunk(t=4, dt=0.05, seq=i, steps=100 * (i + 1)))
  v.page.set_follow(True)
  v.page.select_env(1)
  v.save_clip(client)
  assert wait_until(lambda: client.files, timeout=120)
  ((name, data),) = client.files
  assert name == "env1_steps100-300.mp4" and data[4:8] == b"ftyp"
  v.page.set_follow(False)
  v.save_clip(client)
  assert wait_until(lambda: len(client.files) == 2, timeout=120)
  assert client.files[1][0].startswith("grid_")


def test_a_still_scene_gets_finer_when_a_page_looks_closer(
  raw_page, wait_until
):
  viewer = WebViewerBatched(num_envs=4, port=0, mode="off").run()
  viewer.init(PUCK_XML)  # nothing streams: a model check (the view page)
  try:
    view = viewer.page.view
    assert view is not None and view.detail_levels("capsule") is not None
    assert view.detail_levels("capsule").max() == 0  # no page: coarse
    with raw_page(viewer):  # a page whose camera is close to the envs
      assert wait_until(
        lambda: view.detail_levels("capsule").max() > 0, timeout=10
      )
  finally:
    viewer.close()
