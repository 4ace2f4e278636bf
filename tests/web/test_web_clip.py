"""The live page's *Save clip*: which frames it draws, its size, cancel, one
video at a time, and (in Chromium) the MP4 arriving as a download."""

from __future__ import annotations

import contextlib
import threading
from typing import Iterator

import av
import mujoco
import pytest

from braxviewer import WebViewerBatched
from braxviewer.core.timeline import RecentChunks
from braxviewer.record.export import ClipCancelled, plan_frames
from braxviewer.testing.factories import frame_chunk, stream_info
from braxviewer.testing.synthetic import PUCK_XML
from braxviewer.web.clip import (
  CLIP_FPS,
  CLIP_SIZE,
  VideoJobs,
  clip_size,
  render_page_clip,
)


def timeline(chunks: int, frames: int, dt: float, envs: int = 4):
  kept = RecentChunks()
  for i in range(chunks):
    kept.append(frame_chunk(t=frames, n=envs, dt=dt, seq=i, steps=100 * i))
  return kept.chunks("train")


def decode(path: str):
  with av.open(path) as container:
    stream = container.streams.video[0]
    frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    return frames, float(stream.average_rate)


@pytest.fixture(scope="module")
def puck():
  return mujoco.MjModel.from_xml_string(PUCK_XML)


def test_frames_are_picked_across_chunks_at_most_30_per_second():
  assert CLIP_FPS == 30.0
  plan = plan_frames([10, 10, 10], dt=0.01, max_fps=CLIP_FPS)  # 100 fps
  assert (plan.stride, plan.fps, plan.total) == (4, 25.0, 8)  # not 3 x 3
  plan = plan_frames([80] * 43, dt=0.05, max_fps=CLIP_FPS)  # 20 fps: all
  assert (plan.stride, plan.fps, plan.total) == (1, 20.0, 3440)


def test_page_clip_renders_the_planned_frames(puck, tmp_path):
  fast = timeline(3, 10, dt=0.01)  # 100 frames/s of real time: every 4th
  result = render_page_clip(fast, puck, str(tmp_path / "a.mp4"), grid=True)
  frames, fps = decode(result.path)
  assert len(frames) == result.frames == 8 and fps == pytest.approx(25.0)
  assert frames[0].shape == (CLIP_SIZE[1], CLIP_SIZE[0], 3)
  slow = timeline(2, 6, dt=0.05)  # 20 frames/s: every frame
  out = str(tmp_path / "b.mp4")
  result = render_page_clip(slow, puck, out, env=1, size=(320, 180))
  frames, fps = decode(out)
  assert len(frames) == result.frames == 12 and fps == pytest.approx(20.0)
  assert frames[0].shape == (180, 320, 3)


def test_clip_size_keeps_the_page_aspect_within_640_pixels():
  assert clip_size(1200, 760) == (640, 404)
  assert clip_size(700, 900) == (496, 640)
  assert clip_size(301, 200) == (300, 200)  # small pages: their own size
  assert clip_size(None, None) == CLIP_SIZE


def test_a_cancelled_clip_writes_nothing(puck, tmp_path):
  out = tmp_path / "c.mp4"
  with pytest.raises(ClipCancelled):
    render_page_clip(timeline(2, 6, 0.05), puck, str(out), stopped=lambda: True)
  assert list(tmp_path.iterdir()) == []


class _Client:
  def __init__(self):
    self.files, self.notes = [], []
    self.sent = threading.Event()

  def send_file_download(self, name, data, **options):
    self.files.append((name, data, options))
    self.sent.set()

  def add_notification(self, title, body, **options):
    self.notes.append(title)
    self.sent.set()


def test_one_video_at_a_time_and_cancel_sends_nothing():
  jobs = VideoJobs()
  started, client, other = threading.Event(), _Client(), _Client()

  def render(path, on_frame, stopped):
    started.set()
    while not stopped():
      on_frame(1, 4)
      threading.Event().wait(0.01)
    raise ClipCancelled

  assert jobs.start(client, "a.mp4", render)
  assert started.wait(10) and jobs.progress == 0.25
  assert not jobs.start(other, "b.mp4", render)  # busy: that page is told
  assert other.notes == ["Busy"]
  jobs.cancel()
  assert client.sent.wait(10) and client.notes == ["Video cancelled"]
  assert jobs.thread is not None
  jobs.thread.join(10)
  assert not jobs.busy and not client.files

  def write(path, on_frame, stopped):
    with open(path, "wb") as f:
      f.write(b"video")

  client = _Client()
  assert jobs.start(client, "c.mp4", write) and client.sent.wait(10)
  assert client.files == [("c.mp4", b"video", {"save_immediately": True})]


@contextlib.contextmanager
def serving(frames: int) -> Iterator[WebViewerBatched]:
  """A live viewer of 4 pucks holding 3 chunks of ``frames`` frames."""
  viewer = WebViewerBatched(num_envs=4, port=0).run()
  try:
    viewer.init(PUCK_XML)
    viewer.on_stream_start(stream_info(4, reward_terms=("r",)))
    for i in range(3):
      viewer.on_chunk(frame_chunk(t=frames, n=4, dt=0.05, seq=i, steps=100 * i))
    yield viewer
  finally:
    viewer.close()


def test_save_clip_downloads_an_mp4_in_chromium(page, open_page, tmp_path):
  with serving(8) as viewer:
    open_page(page, viewer.url)
    with page.expect_download(timeout=120_000) as info:
      page.get_by_role("button", name="Save clip").click()
    download = info.value
    assert download.suggested_filename == "grid_steps0-200.mp4"
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    data = path.read_bytes()
    assert len(data) > 1000 and data[4:8] == b"ftyp"
    frames, _ = decode(str(path))
    assert len(frames) == 24  # 3 chunks of 8 frames at 20 fps: all
    assert page.blocked == []


def test_a_clip_shows_its_progress_and_cancels_in_chromium(page, open_page):
  with serving(400) as viewer:  # 1,200 frames: seconds to make
    open_page(page, viewer.url)
    downloads = []
    page.on("download", lambda d: downloads.append(d))
    page.get_by_role("button", name="Save clip").click()
    cancel = page.get_by_role("button", name="Cancel video")
    cancel.wait_for(timeout=30_000)
    assert page.get_by_role("progressbar").count() >= 1
    cancel.click()
    page.get_by_text("Video cancelled").wait_for(timeout=30_000)
    cancel.wait_for(state="detached", timeout=30_000)
    assert not viewer.host.videos.busy and downloads == []
