"""The page in real headless Chromium, fed by a stand-in trainer.

A :class:`SyntheticStream` steps 8 MuJoCo envs (a red puck with a motorised
arm each) with mujoco itself and streams real FrameChunks through the
TrainingViewer protocol, as the PPO trainer does. The page is loaded with the
network cut off from everything but 127.0.0.1.
"""

from __future__ import annotations

import time

import mujoco
import numpy as np
import pytest
from scipy import ndimage

from braxviewer import WebViewerBatched
from braxviewer.core.protocol import Mode
from braxviewer.testing.synthetic import PUCK_XML, SyntheticStream

N = 8


def env_blobs(pixels: np.ndarray, min_area: int = 200):
  """Envs seen in a screenshot: connected coloured regions (a red puck with
  its blue arm; floor, grid and labels are grey). Returns (labels, areas)."""
  rgb = pixels.astype(int)
  colour = rgb.max(-1) - rgb.min(-1) > 90
  colour = ndimage.binary_closing(colour, iterations=3)  # label text gaps
  labels, count = ndimage.label(colour)
  areas = ndimage.sum(colour, labels, range(1, count + 1))
  keep = [i + 1 for i, a in enumerate(areas) if a >= min_area]
  return labels, keep


def count_envs(pixels: np.ndarray) -> int:
  return len(env_blobs(pixels)[1])


@pytest.fixture(scope="module")
def live():
  """A running viewer of 8 envs with a producer thread feeding it."""
  viewer = WebViewerBatched(
    num_envs=N, grid_dims=(4, 2, 1), env_offset=(1.3, 1.3, 1.0), port=0
  )
  viewer.run()
  model = mujoco.MjModel.from_xml_string(PUCK_XML)
  viewer.init(model)
  stream = SyntheticStream(
    viewer,
    model,
    chunk_length=10,
    frame_skip=5,
    chunks_per_s=5.0,
    progress_every=2,
  ).start()
  yield viewer, stream
  stream.stop()
  viewer.close()
  assert stream.error is None


@pytest.fixture
def viewer(live):
  viewer, _ = live
  viewer.set_mode("live")
  viewer.playback.go_live()
  viewer.playback.set_paused(False)
  viewer.page.set_show_only(False)
  viewer.page.select_env(0)
  return viewer


def click_tab(page, name: str) -> None:
  page.get_by_role("tab", name=name).click()


def choose_mode(page, mode: str) -> None:
  click_tab(page, "Live")
  page.get_by_role("combobox", name="Streaming").click()
  page.get_by_role("option", name=mode, exact=True).click()


def top_view(page) -> None:
  click_tab(page, "Envs")
  page.get_by_role("button", name="top", exact=True).click()
  time.sleep(1.0)


def test_loads_offline_renders_all_envs(
  viewer, page, open_page, scene_pixels, wait_until
):
  open_page(page, viewer.url)
  assert page.blocked == []  # nothing outside 127.0.0.1 was even asked for
  top_view(page)
  pixels = scene_pixels(page)
  assert pixels.std() > 10  # not a blank (or black) canvas
  assert pixels.mean() > 60
  assert wait_until(lambda: count_envs(scene_pixels(page)) == N, timeout=10)
  assert page.blocked == []


def test_live_moves_off_freezes_mode_reaches_trainer(
  live, viewer, page, open_page, scene_pixels, wait_until
):
  _, stream = live
  open_page(page, viewer.url)
  before = scene_pixels(page)
  time.sleep(1.0)
  assert np.abs(scene_pixels(page).astype(int) - before).max() > 40

  choose_mode(page, "off")
  assert wait_until(lambda: viewer.mode == Mode.OFF, timeout=5)
  sent = stream.chunks_sent
  assert wait_until(lambda: page.get_by_text("off", exact=True).count() > 0)
  time.sleep(1.5)  # the chunk on screen plays out
  assert stream.chunks_sent <= sent + 1  # the trainer stopped streaming
  first = scene_pixels(page)
  time.sleep(1.0)
  assert np.array_equal(first, scene_pixels(page))

  choose_mode(page, "sync")
  assert wait_until(lambda: viewer.mode == Mode.SYNC, timeout=5)
  dropped = viewer.stats()["frames_dropped"]
  shown = viewer.stats()["frames_shown"]
  time.sleep(2.0)
  stats = viewer.stats()
  assert stats["frames_shown"] >= shown + 20  # ~20 frames/s, every one shown
  assert stats["frames_dropped"] <= dropped + 2

  choose_mode(page, "live")
  assert wait_until(lambda: viewer.mode == Mode.LIVE, timeout=5)
  before = scene_pixels(page)
  time.sleep(1.0)
  assert np.abs(scene_pixels(page).astype(int) - before).max() > 40


def test_plots_receive_data(viewer, page, open_page, wait_until):
  open_page(page, viewer.url)
  click_tab(page, "Training")
  chart = page.locator(".uplot").filter(has_text="Eval reward")
  chart.wait_for(timeout=20000)
  assert page.get_by_text("episode_reward").count() > 0
  click_tab(page, "Envs")
  terms = page.locator(".uplot").filter(has_text="reward_forward")
  terms.wait_for(timeout=20000)
  # The series are drawn: the chart canvas holds coloured (non-grey) pixels.
  import io

  from PIL import Image

  def coloured_pixels() -> int:
    png = terms.locator("canvas").first.screenshot()
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    return int((rgb.max(-1) - rgb.min(-1) > 40).sum())

  assert wait_until(lambda: coloured_pixels() > 300, timeout=30)


def test_select_env_by_keys_slider_click_and_show_only(
  viewer, page, open_page, scene_pixels, wait_until
):
  open_page(page, viewer.url)
  top_view(page)
  page.mouse.click(5, 400)  # focus the page (hotkeys)
  page.keyboard.press("ArrowRight")
  assert wait_until(lambda: viewer.page.selected_env == 1, timeout=5)
  page.keyboard.press("ArrowLeft")
  assert wait_until(lambda: viewer.page.selected_env == 0, timeout=5)

  slider = page.locator("label:text-is('Env')").get_attribute("for")
  env_input = page.locator(f"[id='{slider}'] ~ div input")  # the slider's box
  env_input.fill("5")
  env_input.press("Enter")
  assert wait_until(lambda: viewer.page.selected_env == 5, timeout=5)

  viewer.playback.set_paused(True)  # hold still while we aim
  time.sleep(0.5)
  labels, keep = env_blobs(scene_pixels(page))
  centres = ndimage.center_of_mass(labels > 0, labels, keep)
  y, x = min(centres, key=lambda c: c[1])  # a leftmost env: 0 or 4, not 5
  page.mouse.click(x, y + 170)
  assert wait_until(lambda: viewer.page.selected_env != 5, timeout=5)
  viewer.playback.set_paused(False)

  # Level of detail follows the page's own camera: following an env brings
  # its arm close, and finer than seen from the top; from the top again,
  # coarser again.
  assert viewer.stats()["triangles"] > 0
  view = viewer.page.view

  def selected_arm() -> int:  # one arm (a capsule) per env
    return int(view.detail_levels("capsule")[viewer.page.selected_env])

  from_top = selected_arm()
  click_tab(page, "Envs")
  page.get_by_role("button", name="follow", exact=True).click()
  assert wait_until(lambda: viewer.page.following, timeout=5)
  assert wait_until(lambda: selected_arm() > from_top, timeout=10)
  following = selected_arm()
  page.get_by_role("button", name="top", exact=True).click()
  assert wait_until(lambda: not viewer.page.following, timeout=5)
  assert wait_until(lambda: selected_arm() < following, timeout=10)
  page.get_by_text("Only selected").click()
  assert wait_until(lambda: count_envs(scene_pixels(page)) == 1, timeout=10)
  page.get_by_text("Only selected").click()
  assert wait_until(lambda: count_envs(scene_pixels(page)) == N, timeout=10)


def row(page, label: str):
  """The GUI row of a labelled widget."""
  return page.locator("label", has_text=label).first.locator("xpath=../../..")


def still(scene_pixels, page, seconds=1.0) -> bool:
  """The scene did not change over ``seconds``."""
  before = scene_pixels(page)
  time.sleep(seconds)
  return np.array_equal(before, scene_pixels(page))


def test_timeline_reviews_past_chunks_during_training_then_goes_live(
  live, viewer, page, open_page, scene_pixels, wait_until
):
  _, stream = live
  open_page(page, viewer.url)
  click_tab(page, "Live")
  assert wait_until(
    lambda: page.get_by_text("following training", exact=False).count() > 0
  )
  # pause from the page: the scene freezes while training streams on
  row(page, "Play").get_by_role("checkbox").click()
  assert wait_until(lambda: viewer.playback.player.paused, timeout=5)
  sent = stream.chunks_sent
  assert wait_until(lambda: still(scene_pixels, page), timeout=10)
  frozen = scene_pixels(page)
  assert stream.chunks_sent > sent
  # back ~6 s of training (30 chunks): a past picture, reviewing, paused
  assert wait_until(lambda: len(viewer.playback.timeline) >= 40, timeout=30)
  kept = viewer.playback.timeline
  box = row(page, "Timeline").get_by_role("textbox")
  box.fill(str(len(kept) - 29))  # 1-based: the 30th chunk from the end
  box.press("Enter")
  assert wait_until(lambda: viewer.playback.reviewing, timeout=5)
  cursor = viewer.playback.player.cursor
  assert (
    kept.end - 30 <= cursor <= kept.end - 27
  )  # the timeline moved on meanwhile
  assert viewer.playback.player.paused
  assert wait_until(
    lambda: page.get_by_text("reviewing", exact=False).count() > 0
  )
  assert wait_until(
    lambda: np.abs(scene_pixels(page).astype(int) - frozen).max() > 40,
    timeout=5,
  )
  # one chunk on with the up key, then the Live button: training again
  page.evaluate("document.activeElement && document.activeElement.blur()")
  page.keyboard.press("ArrowUp")
  assert wait_until(
    lambda: viewer.playback.player.cursor == cursor + 1, timeout=5
  )
  page.get_by_role("button", name="Live", exact=True).click()
  assert wait_until(lambda: not viewer.playback.reviewing, timeout=5)
  assert not viewer.playback.player.paused
  newest = viewer.playback.timeline.end
  assert wait_until(
    lambda: viewer.playback.player.cursor >= newest - 1, timeout=5
  )
  before = scene_pixels(page)
  time.sleep(1.0)
  assert np.abs(scene_pixels(page).astype(int) - before).max() > 40


def test_two_tabs_and_reload_reconnect(
  viewer, page, open_page, scene_pixels, wait_until
):
  open_page(page, viewer.url)
  second = page.context.new_page()
  open_page(second, viewer.url)
  assert wait_until(lambda: viewer.stats()["clients"] == 2, timeout=10)
  for pg in (page, second):
    before = scene_pixels(pg)
    time.sleep(1.0)
    assert np.abs(scene_pixels(pg).astype(int) - before).max() > 40
  second.close()
  page.reload()
  open_page(page, viewer.url)
  assert wait_until(lambda: viewer.stats()["clients"] == 1, timeout=10)
  before = scene_pixels(page)
  time.sleep(1.0)
  assert np.abs(scene_pixels(page).astype(int) - before).max() > 40
  choose_mode(page, "off")  # the reloaded page still drives the trainer
  assert wait_until(lambda: viewer.mode == Mode.OFF, timeout=5)
  assert page.blocked == []


def test_live_after_a_review_plays_again_once_training_has_ended(
  page, open_page, scene_pixels, wait_until
):
  viewer = WebViewerBatched(
    num_envs=N, grid_dims=(4, 2, 1), env_offset=(1.3, 1.3, 1.0), port=0
  ).run()
  model = mujoco.MjModel.from_xml_string(PUCK_XML)
  viewer.init(model)
  stream = SyntheticStream(
    viewer, model, chunk_length=10, frame_skip=5, chunks_per_s=10.0
  ).start()
  try:
    assert wait_until(lambda: len(viewer.playback.timeline) >= 12, timeout=60)
    stream.stop()  # training is over: no new chunk will come
    open_page(page, viewer.url)  # a page opened after the end
    click_tab(page, "Live")
    box = row(page, "Timeline").get_by_role("textbox")
    box.fill("2")
    box.press("Enter")
    assert wait_until(lambda: viewer.playback.reviewing, timeout=10)
    row(page, "Play").get_by_role("checkbox").click()  # paused on chunk 2
    assert wait_until(lambda: viewer.playback.player.paused, timeout=10)
    assert wait_until(lambda: still(scene_pixels, page), timeout=10)
    reviewed = scene_pixels(page)
    page.get_by_role("button", name="Live", exact=True).click()
    newest = viewer.playback.timeline.end - 1
    assert wait_until(lambda: viewer.playback.player.cursor == newest, 10)
    assert not viewer.playback.reviewing and not viewer.playback.player.paused
    assert wait_until(
      lambda: np.abs(scene_pixels(page).astype(int) - reviewed).max() > 40,
      timeout=10,
    )  # the newest chunk is on screen, not the reviewed one
  finally:
    stream.stop()
    viewer.close()


def _status(page) -> str:
  """The timeline's status line (``Chunk 5 / 12 (train) · ...``)."""
  return page.locator("p", has_text="(train)").first.inner_text()


def _red(button) -> bool:
  """The button is filled red (Live: following training), not grey."""
  rgb = button.evaluate("e => getComputedStyle(e).backgroundColor")
  r, g, _ = (int(v) for v in rgb[rgb.index("(") + 1 : -1].split(",")[:3])
  return r > g + 80


def test_timeline_box_counts_as_the_status_line_and_live_on_the_newest_plays(
  page, open_page, wait_until
):
  viewer = WebViewerBatched(num_envs=2, grid_dims=(2, 1, 1), port=0).run()
  model = mujoco.MjModel.from_xml_string(PUCK_XML)
  viewer.init(model)
  stream = SyntheticStream(
    viewer, model, chunk_length=10, frame_skip=5, chunks_per_s=10.0
  ).start()
  try:
    assert wait_until(lambda: len(viewer.playback.timeline) >= 12, timeout=60)
    stream.stop()  # training is over: the timeline holds still
    kept = viewer.playback.timeline
    n = len(kept)
    open_page(page, viewer.url)
    click_tab(page, "Live")
    live = page.get_by_role("button", name="Live", exact=True)
    box = row(page, "Timeline").get_by_role("textbox")
    row(page, "Play").get_by_role("checkbox").click()
    assert wait_until(lambda: viewer.playback.player.paused, timeout=10)
    # the box says 5: the status line says chunk 5, the fifth kept chunk
    box.fill("5")
    box.press("Enter")
    assert wait_until(lambda: viewer.playback.player.cursor == kept.start + 4)
    assert wait_until(lambda: _status(page).startswith(f"Chunk 5 / {n} "))
    assert box.input_value() == "5"
    assert "reviewing" in _status(page) and not _red(live)
    # the newest chunk, paused: Live plays it and follows training on
    box.fill(str(n))
    box.press("Enter")
    assert wait_until(lambda: viewer.playback.player.cursor == kept.end - 1)
    assert wait_until(lambda: _status(page).startswith(f"Chunk {n} / {n} "))
    assert box.input_value() == str(n)
    shown = viewer.playback.player.counters.frames_shown
    live.click()
    assert wait_until(
      lambda: (
        "following training" in _status(page) and "paused" not in _status(page)
      )
    )
    assert wait_until(lambda: _red(live))
    assert not viewer.playback.reviewing and not viewer.playback.player.paused
    assert wait_until(  # the newest chunk played through, from its start
      lambda: viewer.playback.player.counters.frames_shown >= shown + 10
    )
    assert box.input_value() == str(n)
    # following already, on the newest chunk, nothing new: it plays again
    shown = viewer.playback.player.counters.frames_shown
    live.click()
    assert wait_until(
      lambda: viewer.playback.player.counters.frames_shown >= shown + 10
    )
    assert viewer.playback.player.cursor == kept.end - 1
  finally:
    stream.stop()
    viewer.close()
