"""The replay page in headless Chromium: a recording of a synthetic stream
played back through the web viewer; timeline, pause and speed driven from
the page."""

from __future__ import annotations

import time

import numpy as np
import pytest

from braxviewer.web.replay import ReplayViewer

CHUNKS = 40


@pytest.fixture(scope="module")
def replay(tmp_path_factory, make_recording):
  path = make_recording(
    str(tmp_path_factory.mktemp("replay") / "run"), chunks=CHUNKS
  )
  viewer = ReplayViewer(path, port=0).run()
  yield viewer
  viewer.close()


def row(page, label: str):
  """The GUI row of a labelled widget."""
  return page.locator("label", has_text=label).first.locator("xpath=../../..")


def advanced(viewer) -> int:
  c = viewer.playback.player.counters
  return c.frames_shown + c.frames_dropped


def scene(scene_pixels, page) -> np.ndarray:
  return scene_pixels(page)[:, :840]  # left of the control panel


def test_replay_page_timeline_moves_the_scene_pause_and_speed_work(
  replay, page, open_page, scene_pixels, wait_until
):
  player = replay.playback.player
  total = len(player.timeline)
  assert total >= CHUNKS
  open_page(page, replay.url)
  assert page.blocked == []
  # the panel arrives just after the connection
  assert wait_until(lambda: page.get_by_text("Replay", exact=True).count() > 0)
  # the status line names the chunk on screen
  assert wait_until(lambda: page.get_by_text("Chunk").count() > 0)

  # pause from the page: the scene freezes
  row(page, "Play").get_by_role("checkbox").click()
  assert wait_until(lambda: player.paused)
  time.sleep(0.8)
  frozen = scene(scene_pixels, page)
  time.sleep(1.0)
  assert np.array_equal(frozen, scene(scene_pixels, page))
  assert player.paused

  # next chunk (button), then the up key: the scene moves, still paused
  cursor = player.cursor
  page.get_by_role("button", name="Next chunk").click()
  assert wait_until(lambda: player.cursor == (cursor + 1) % total)
  page.evaluate("document.activeElement && document.activeElement.blur()")
  page.keyboard.press("ArrowUp")
  assert wait_until(lambda: player.cursor == (cursor + 2) % total)

  # the timeline: jump far away; the picture changes
  before = scene(scene_pixels, page)
  target = (cursor + 20) % total
  box = row(page, "Timeline").get_by_role("textbox")
  box.fill(str(target + 1))  # counted from 1, as the status line
  box.press("Enter")
  assert wait_until(lambda: player.cursor == target)
  assert wait_until(
    lambda: np.abs(scene(scene_pixels, page).astype(int) - before).max() > 60,
    timeout=5,
  )
  assert wait_until(
    lambda: (
      page.get_by_text(f"Chunk {target + 1} / {total}", exact=False).count() > 0
    )
  )
  assert player.paused
  shown = scene(scene_pixels, page)
  time.sleep(0.8)
  assert np.array_equal(shown, scene(scene_pixels, page))

  # play again at 1x, then at 4x: frames advance about 4 times as fast
  row(page, "Play").get_by_role("checkbox").click()
  assert wait_until(lambda: not player.paused)
  assert player.speed == pytest.approx(1.0)
  start = advanced(replay)
  time.sleep(2.0)
  at_1x = advanced(replay) - start
  speed = row(page, "Speed").get_by_role("textbox")
  for _ in range(3):  # a loaded machine may drop an edit made mid-update
    speed.fill("4")
    speed.press("Enter")
    if wait_until(lambda: player.speed == pytest.approx(4.0), timeout=5):
      break
  assert player.speed == pytest.approx(4.0)
  start = advanced(replay)
  time.sleep(2.0)
  at_4x = advanced(replay) - start
  assert 25 <= at_1x <= 55, at_1x  # 20 frames/s of recorded time
  assert at_4x >= 2.5 * at_1x, (at_1x, at_4x)
  moving = scene(scene_pixels, page)
  time.sleep(0.5)
  assert np.abs(scene(scene_pixels, page).astype(int) - moving).max() > 40


class _FakeClient:
  def __init__(self):
    self.files = []
    self.notes = []

  def send_file_download(self, name, data, **kwargs):
    del kwargs
    self.files.append((name, data))

  def add_notification(self, *args, **kwargs):
    self.notes.append((args, kwargs))


def test_export_button_sends_the_current_chunk_as_mp4(replay, wait_until):
  client = _FakeClient()
  replay.page.select_env(2)
  replay.playback.jump(5)
  replay.export_clicked(client)  # the button's handler
  assert wait_until(lambda: client.files or client.notes, timeout=120)
  assert not client.notes
  ((name, data),) = client.files
  steps = int(replay.playback.timeline.env_steps[5])
  assert name == f"env2_step{steps}.mp4"
  assert data[4:8] == b"ftyp" and len(data) > 1000
