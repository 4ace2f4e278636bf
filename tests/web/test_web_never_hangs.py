"""The viewer never hangs a training run and lets no stranger drive it: a
held sync whose page went away falls back to live, Ctrl-C reaches a script
waiting in sync, a page from another origin cannot open the socket, and a
script that never closes its viewer exits quietly."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import textwrap
import threading
import time
import types
import warnings

import mujoco
import viser

from braxviewer import WebViewerBatched
from braxviewer.core.protocol import Mode
from braxviewer.testing.synthetic import PUCK_XML, SyntheticStream
from braxviewer.web.errors import ViewerWarning

MODEL = mujoco.MjModel.from_xml_string(PUCK_XML)


def row(page, label: str):
  return page.locator("label", has_text=label).first.locator("xpath=../../..")


def test_a_sync_paused_by_a_page_that_closed_goes_on_then_falls_back_to_live(
  chromium, open_page, wait_until
):
  viewer = WebViewerBatched(num_envs=2, port=0, mode="sync").run()
  viewer.init(MODEL)
  stream = SyntheticStream(
    viewer, MODEL, num_envs=2, chunk_length=10, chunks_per_s=None
  ).start()
  context = chromium.new_context(viewport={"width": 1200, "height": 760})
  page = context.new_page()
  try:
    with warnings.catch_warnings(record=True) as caught:
      warnings.simplefilter("always")
      open_page(page, viewer.url)
      assert wait_until(lambda: stream.chunks_sent > 3, timeout=30)
      page.get_by_role("tab", name="Live").click()
      row(page, "Play").get_by_role("checkbox").click()  # pause: sync waits
      assert wait_until(lambda: viewer.playback.player.paused, timeout=10)
      time.sleep(1.0)
      held = stream.chunks_sent
      time.sleep(1.5)
      assert stream.chunks_sent <= held + 1  # the trainer waits, as asked
      context.close()  # the page goes away, still paused
      # its pause ends with it; with no page at all, sync falls back to live
      assert wait_until(lambda: not viewer.playback.player.paused, timeout=10)
      assert wait_until(lambda: viewer.mode == Mode.LIVE, timeout=30)
      assert wait_until(lambda: stream.chunks_sent > held + 5, timeout=30)
    ours = [str(w.message) for w in caught if w.category is ViewerWarning]
    assert len(ours) == 1 and "falls back to live" in ours[0]
  finally:
    stream.stop()
    viewer.close()
  assert stream.error is None


class _ForeignSite(http.server.BaseHTTPRequestHandler):
  """A page from another local origin that tries to open the viewer's
  socket and writes what happened into its title."""

  target = ""

  def do_GET(self):  # noqa: N802 (http.server's name)
    body = textwrap.dedent(f"""
      <html><head><title>start</title></head><body><script>
      const ws = new WebSocket("{self.target}", ["viser-v{viser.__version__}"]);
      ws.onopen = () => {{ document.title = "opened"; }};
      ws.onerror = () => {{ document.title = "refused"; }};
      </script></body></html>""").encode()
    self.send_response(200)
    self.send_header("Content-Type", "text/html")
    self.send_header("Content-Length", str(len(body)))
    self.end_headers()
    self.wfile.write(body)

  def log_message(self, *args):
    pass


def test_a_page_from_another_origin_cannot_open_the_viewers_socket(
  page, wait_until
):
  with WebViewerBatched(num_envs=2, port=0) as viewer:
    viewer.init(MODEL)
    _ForeignSite.target = f"ws://127.0.0.1:{viewer.port}"
    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ForeignSite)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    try:
      page.goto(f"http://127.0.0.1:{site.server_address[1]}/")
      assert wait_until(lambda: page.title() != "start", timeout=15)
      assert page.title() == "refused"
      assert viewer.clients() == 0 and viewer.mode == Mode.LIVE
      # the same page served by the viewer itself connects (control)
      page.goto(viewer.url)
      assert wait_until(lambda: viewer.clients() == 1, timeout=30)
    finally:
      site.shutdown()


_SCRIPT = """
import sys, time
import jax, numpy as np
from braxviewer import WebViewerBatched
from braxviewer.core.frames import FrameChunk
from braxviewer.core.protocol import StreamInfo
from braxviewer.testing.synthetic import PUCK_XML

viewer = WebViewerBatched(num_envs=1, port=0, mode="sync")
viewer.run()
viewer.init(PUCK_XML)
viewer.on_stream_start(StreamInfo(
    num_envs=1, num_train_envs=1, envs_per_device=1, kind="qpos", nq=8,
    num_links=None, dt=0.01, chunk_length=5, reward_terms=()))
viewer.playback.set_paused(True)  # held: the page's chunk never shows

def send(x):
  z = np.zeros((5, 1))
  viewer.on_chunk(FrameChunk(seq=0, source="train", env_steps=0, dt=0.01,
      reward=z, done=z, truncation=z, metrics={}, wall_time=time.time(),
      qpos=np.zeros((5, 1, 8))))

def body(x):
  # enough work that XLA runs it on its own threads, as a training step:
  # the callback then waits there, the main thread waits for the result
  y = jax.lax.fori_loop(0, 200, lambda i, a: jax.numpy.tanh(a @ a), x)
  jax.debug.callback(send, y[0, 0])
  return y

step = jax.pmap(body, axis_name="i")

print("PORT", viewer.port, flush=True)
sys.stdin.readline()  # the test's page is connected
print("WAITING", flush=True)
np.asarray(step(np.full((1, 256, 256), 0.01, np.float32)))  # waits
print("NOT REACHED", flush=True)
"""


def test_ctrl_c_stops_a_script_whose_training_waits_in_sync(
  tmp_path, spawn, raw_page
):
  script = tmp_path / "waits.py"
  script.write_text(_SCRIPT)
  child = spawn(
    [str(script)], stdin=True, env={**os.environ, "JAX_PLATFORMS": "cpu"}
  )
  port = int(child.wait_for("PORT").split()[1])  # after the viewer's URL
  # a page stays open: no fallback to live, only Ctrl-C ends it
  with raw_page(types.SimpleNamespace(port=port)):
    child.send("go")
    child.wait_for("WAITING", timeout=60)
    time.sleep(3.0)  # in the device call, waiting for the page
    assert child.running()
    child.interrupt()
    code = child.finish(timeout=60)  # hangs for good if broken
  assert "NOT REACHED" not in child.stdout
  assert "KeyboardInterrupt" in child.stderr and code != 0


def test_a_script_that_never_closes_its_viewer_exits_quietly(tmp_path):
  for ending in ("", "raise RuntimeError('the user script failed')"):
    script = tmp_path / "leaves.py"
    script.write_text(
      textwrap.dedent(f"""
      from braxviewer import WebViewerBatched
      from braxviewer.testing.synthetic import PUCK_XML
      viewer = WebViewerBatched(num_envs=2, port=0)
      viewer.run()
      viewer.init(PUCK_XML)
      {ending}
      """)
    )
    result = subprocess.run(
      [sys.executable, str(script)], capture_output=True, text=True, timeout=120
    )
    assert "Warning" not in result.stderr, result.stderr
    assert "stopped unexpectedly" not in result.stderr
    if ending:
      assert "the user script failed" in result.stderr
    else:
      assert result.returncode == 0, result.stderr
