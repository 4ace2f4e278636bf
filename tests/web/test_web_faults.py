"""The viewer never takes training down.

A producer thread stands in for the trainer. For each fault (the browser
closing mid-run, the server thread dying, garbage on the websocket, the viewer
failing to draw) the producer keeps going, at most one clear warning is
issued, and after close() no thread or socket is left behind.
"""

from __future__ import annotations

import os
import threading
import warnings

import mujoco
import pytest
import viser
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from braxviewer import WebViewerBatched
from braxviewer.core.protocol import Mode
from braxviewer.scene.batched import BatchedScene
from braxviewer.testing.synthetic import PUCK_XML, SyntheticStream
from braxviewer.web.errors import ViewerWarning
from braxviewer.web.server import port_is_free

MODEL = mujoco.MjModel.from_xml_string(PUCK_XML)


def sockets() -> int:
  count = 0
  for fd in os.listdir("/proc/self/fd"):
    try:
      count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
    except OSError:
      pass
  return count


@pytest.fixture
def run(wait_until):
  """Start a viewer and a producer; on exit check the producer kept going,
  count the viewer's warnings, and check nothing leaked after close()."""
  threads_before = set(threading.enumerate())
  sockets_before = sockets()
  started = []

  def start(mode="live"):
    viewer = WebViewerBatched(num_envs=4, port=0, mode=mode).run()
    viewer.init(MODEL)
    stream = SyntheticStream(
      viewer, MODEL, chunk_length=10, frame_skip=5, chunks_per_s=10.0
    ).start()
    started.append((viewer, stream))
    assert wait_until(lambda: viewer.stats()["frames_shown"] > 3)
    return viewer, stream

  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    yield start, caught
  for viewer, stream in started:
    made = stream.chunks_made
    assert wait_until(lambda s=stream, m=made: s.chunks_made >= m + 3), (
      "producer stalled"
    )
    stream.stop()
    port = viewer.port
    viewer.close()
    assert stream.error is None
    assert port_is_free("127.0.0.1", port)
  assert wait_until(
    lambda: set(threading.enumerate()) <= threads_before, timeout=5
  ), set(threading.enumerate()) - threads_before
  assert wait_until(lambda: sockets() <= sockets_before, timeout=5)


def viewer_warnings(caught):
  return [str(w.message) for w in caught if w.category is ViewerWarning]


def test_browser_closing_mid_run(run, chromium, open_page, wait_until):
  start, caught = run
  viewer, stream = start(mode="sync")
  context = chromium.new_context()
  page = context.new_page()
  open_page(page, viewer.url)
  assert wait_until(lambda: viewer.stats()["clients"] == 1)
  context.close()  # the tab goes away while training waits on it (sync)
  assert wait_until(lambda: viewer.stats()["clients"] == 0)
  sent = stream.chunks_sent
  assert wait_until(lambda: stream.chunks_sent >= sent + 3)
  assert stream.max_on_chunk_s < 3.0  # sync paces at real time, no hang
  assert viewer_warnings(caught) == []


def test_server_thread_dying(run, wait_until):
  start, caught = run
  viewer, stream = start(mode="sync")
  loop = viewer.host._web._loop  # fault injection: the server's own loop
  loop.call_soon_threadsafe(loop.stop)  # the server's event loop dies
  assert wait_until(lambda: viewer.failed is not None)
  assert viewer.mode == Mode.OFF  # the trainer stops streaming to it
  made = stream.chunks_made
  assert wait_until(lambda: stream.chunks_made >= made + 3)
  messages = viewer_warnings(caught)
  assert len(messages) == 1 and "web server stopped" in messages[0]


def test_garbage_on_the_websocket(run, wait_until):
  start, caught = run
  viewer, stream = start()
  url = viewer.url.replace("http://", "ws://")
  for payload in (
    b"\x00\xffgarbage",
    "a text frame",
    b"\x81\xa4type\xa7Nothing",
    b"\x82\xa4type\xb0GuiUpdateMessage\xa4uuid\xa1x",
  ):
    with connect(url, subprotocols=[f"viser-v{viser.__version__}"]) as ws:
      ws.send(payload)
      with pytest.raises(ConnectionClosed):  # the server hangs up on it
        while True:
          ws.recv(timeout=5)
  shown = viewer.stats()["frames_shown"]
  assert wait_until(lambda: viewer.stats()["frames_shown"] > shown + 5)
  assert viewer.failed is None and viewer.mode == Mode.LIVE
  messages = viewer_warnings(caught)
  assert len(messages) == 1 and "could not read" in messages[0]


def test_viewer_failing_to_draw(run, monkeypatch, wait_until, raw_page):
  start, caught = run
  viewer, stream = start(mode="sync")

  def broken(self, chunk):
    raise ValueError("bad frame")

  with raw_page(viewer):  # a page is open: chunks are posed to be drawn
    monkeypatch.setattr(BatchedScene, "poses", broken)
    assert wait_until(lambda: viewer.failed is not None, timeout=15)
    assert viewer.mode == Mode.OFF
  messages = viewer_warnings(caught)
  assert len(messages) == 1 and "bad frame" in messages[0]
