"""What the page says and frames, in real headless Chromium: a run that
was killed reads *lost* (not finished) on the viewer server's page, the
counters follow a switch of runs, and the Follow checkbox frames the env.
"""

from __future__ import annotations

import os
import textwrap
import time

import mujoco
import numpy as np

import braxviewer
from braxviewer import WebViewerBatched
from braxviewer.remote.server import ViewerServer
from braxviewer.testing.factories import stream_info
from braxviewer.testing.synthetic import PUCK_XML, SyntheticStream

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))

# A run in a process of its own that streams until it is killed.
DOOMED_RUN = textwrap.dedent(
  """
  import sys, time
  import numpy as np
  import mujoco
  import braxviewer
  from braxviewer.testing.factories import frame_chunk, stream_info
  from braxviewer.testing.synthetic import PUCK_XML

  model = mujoco.MjModel.from_xml_string(PUCK_XML)
  viewer = braxviewer.connect(sys.argv[1], run="doomed")
  viewer.init(model)
  assert viewer.wait_connected(30)
  viewer.on_stream_start(stream_info(4, nq=model.nq, dt=0.05))
  viewer.on_phase("training")
  seq = 0
  while True:
    viewer.on_chunk(
      frame_chunk(n=4, nq=model.nq, dt=0.05, seq=seq, steps=(seq + 1) * 40)
    )
    viewer.on_progress((seq + 1) * 40, {"eval/episode_reward": float(seq)})
    if seq == 5:
      print("streaming", flush=True)
    seq += 1
    time.sleep(0.1)
  """
)


def _status(page) -> str:
  """The status block's text (the Live tab)."""
  block = page.locator("p", has_text="Training:").first
  return block.inner_text(timeout=5000)


def test_a_killed_run_reads_lost_and_the_counters_follow_a_run_switch(
  spawn, page, open_page, wait_until, puck_model, tmp_path
):
  server = ViewerServer(port=0).run()
  steady = None
  try:
    address = f"127.0.0.1:{server.port}"
    child = spawn(["-c", DOOMED_RUN, address], cwd=ROOT)
    child.wait_for("streaming", timeout=120)
    # A second run, here, far ahead in env steps.
    steady = braxviewer.connect(address, run="steady")
    steady.init(puck_model)
    assert steady.wait_connected(10)
    steady.on_stream_start(stream_info(2, nq=puck_model.nq, dt=0.05))
    steady.on_phase("training")
    steady.on_progress(5_000_000, {"eval/episode_reward": 1.0})
    assert wait_until(lambda: len(server.runs.all()) == 2, timeout=10)
    server.show_run("doomed")
    open_page(page, server.url)
    page.get_by_role("tab", name="Live").click()
    assert wait_until(lambda: "Training: training" in _status(page), 20)
    child.kill()  # SIGKILL: no goodbye on the wire
    assert wait_until(lambda: "Training: lost" in _status(page), 20)
    text = _status(page)
    assert "finished" not in text and "Streaming:" not in text, text
    assert wait_until(lambda: "lost" in page.inner_text("body"), 10)
    assert server.stats()["runs"]["doomed"] == "lost"
    # Switch runs: its own state, its own counts.
    server.show_run("steady")
    assert wait_until(lambda: "Env steps: 5,000,000" in _status(page), 20)
    text = _status(page)
    assert "Training: training" in text and "Dropped frames: 0" in text, text
    page.screenshot(path=str(tmp_path / "status_switch.png"))
  finally:
    if steady is not None:
      steady.close()
    server.close()


def test_the_follow_checkbox_frames_the_selected_env(
  page, open_page, scene_pixels, wait_until, tmp_path
):
  from test_web_page import env_blobs

  viewer = WebViewerBatched(
    num_envs=16, env_offset=(1.3, 1.3, 1.0), port=0
  ).run()
  model = mujoco.MjModel.from_xml_string(PUCK_XML)
  viewer.init(model)
  stream = SyntheticStream(viewer, model, chunk_length=10, chunks_per_s=5.0)
  stream.start()
  try:
    open_page(page, viewer.url)
    page.get_by_role("tab", name="Envs").click()
    page.get_by_role("button", name="top", exact=True).click()
    time.sleep(1.0)

    def biggest() -> float:
      """The tallest env on screen, as a fraction of the view's height."""
      pixels = scene_pixels(page)
      labels, keep = env_blobs(pixels)
      heights = [np.ptp(np.nonzero(labels == k)[0]) for k in keep] or [0]
      return max(heights) / pixels.shape[0]

    assert wait_until(lambda: len(env_blobs(scene_pixels(page))[1]) >= 8, 20)
    small = biggest()
    page.get_by_text("Follow", exact=True).click()
    assert wait_until(lambda: viewer.page.following, timeout=5)
    assert wait_until(lambda: biggest() > max(0.25, 2.5 * small), timeout=20)
    page.screenshot(path=str(tmp_path / "follow.png"))
    page.get_by_text("Follow", exact=True).click()  # off: the grid again
    assert wait_until(lambda: not viewer.page.following, timeout=5)
    assert wait_until(lambda: biggest() < 0.6 * max(0.25, 2.5 * small), 20)
  finally:
    stream.stop()
    viewer.close()
  assert stream.error is None
