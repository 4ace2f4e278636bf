"""Shared fixtures: waiting, synthetic chunks and clocks, recordings, and
scripts run as a user runs them, and headless Chromium for the page tests.

Debian's Chromium is used as installed (never ``playwright install``); page
tests fail, naming the fix, where it or Playwright is missing. Every page blocks
requests to anything but the local machine and records them, so a test can
assert the page needed no network.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import queue
import signal
import subprocess
import sys
import threading
import time
from typing import (
  Any,
  Callable,
  Dict,
  Iterator,
  List,
  Mapping,
  Optional,
  Sequence,
)
from urllib.parse import urlparse
import warnings

import msgspec
import mujoco
import numpy as np
import pytest
import viser
from websockets.sync.client import connect

from braxviewer.core.frames import FrameChunk
from braxviewer.core.protocol import StreamInfo
from braxviewer.record import Recorder, RecorderStats
from braxviewer.testing import chromium as chromium_launch
from braxviewer.testing.factories import frame_chunk, stream_info
from braxviewer.testing.synthetic import PUCK_XML, SyntheticStream

VIEWPORT = {"width": 1200, "height": 760}
LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")


# -- scripts run as a user runs them -------------------------------------------


def _ctrl_c_enabled() -> None:
  """In the child: Ctrl-C as in a terminal, even when the test run was
  started in the background (where SIGINT is inherited as ignored)."""
  signal.signal(signal.SIGINT, signal.SIG_DFL)


class Child:
  """A Python process started as a user starts one (Ctrl-C works), its
  output read in the background. Every wait is bounded: a child that hangs
  fails its test with what it printed; it never hangs the suite."""

  def __init__(
    self,
    args: Sequence[str],
    *,
    cwd: Optional[str] = None,
    env: Optional[Mapping[str, str]] = None,
    stdin: bool = False,
    merge_stderr: bool = False,
  ):
    self.proc = subprocess.Popen(
      [sys.executable, *args],
      cwd=cwd,
      env=None if env is None else dict(env),
      stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
      stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
      text=True,
      preexec_fn=_ctrl_c_enabled,
    )
    self._out: List[str] = []
    self._err: List[str] = []
    self._lines: "queue.Queue[Optional[str]]" = queue.Queue()
    self._readers = [self._reader(self.proc.stdout, self._out, self._lines)]
    if not merge_stderr:
      self._readers.append(self._reader(self.proc.stderr, self._err, None))

  @staticmethod
  def _reader(pipe, lines: List[str], queue_: Optional[queue.Queue]):
    def read():
      for line in pipe:
        lines.append(line)
        if queue_ is not None:
          queue_.put(line)
      if queue_ is not None:
        queue_.put(None)  # end of output

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread

  @property
  def stdout(self) -> str:
    return "".join(self._out)

  @property
  def stderr(self) -> str:
    return "".join(self._err)

  def _tails(self) -> str:
    return f"stdout:\n{self.stdout[-2000:]}\nstderr:\n{self.stderr[-3000:]}"

  def wait_for(self, text: str, timeout: float = 300.0) -> str:
    """The next stdout line holding ``text`` (earlier lines are skipped)."""
    deadline = time.monotonic() + timeout
    while True:
      left = deadline - time.monotonic()
      try:
        line = self._lines.get(timeout=max(left, 0.0))
      except queue.Empty:
        self.kill()
        pytest.fail(
          f"no line with {text!r} within {timeout:.0f} s\n" + self._tails()
        )
      if line is None:
        self.finish(timeout=30)
        pytest.fail(
          f"the process ended without printing {text!r}\n" + self._tails()
        )
      if text in line:
        return line

  def send(self, line: str) -> None:
    assert self.proc.stdin is not None
    self.proc.stdin.write(line + "\n")
    self.proc.stdin.flush()

  def running(self) -> bool:
    return self.proc.poll() is None

  def interrupt(self) -> None:
    """Ctrl-C."""
    self.proc.send_signal(signal.SIGINT)

  def finish(self, timeout: float = 60.0) -> int:
    """Wait for the process to end; its exit status."""
    try:
      self.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
      self.kill()
      pytest.fail(f"still running after {timeout:.0f} s\n" + self._tails())
    for reader in self._readers:
      reader.join(timeout=10)
    return self.proc.returncode

  def kill(self) -> None:
    if self.proc.poll() is None:
      self.proc.kill()
      self.proc.wait(timeout=30)


@pytest.fixture
def spawn() -> Iterator[Callable[..., Child]]:
  """``spawn(args, cwd=, env=, stdin=False, merge_stderr=False)``: a
  :class:`Child`; any still running at the end of the test is killed."""
  children: List[Child] = []

  def start(args: Sequence[str], **kw: Any) -> Child:
    child = Child(args, **kw)
    children.append(child)
    return child

  yield start
  for child in children:
    child.kill()


# -- waiting and synthetic data ------------------------------------------------


def _wait_until(
  predicate: Callable[[], bool], timeout: float = 20.0, step: float = 0.05
) -> bool:
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    if predicate():
      return True
    time.sleep(step)
  return bool(predicate())


@pytest.fixture(scope="session")
def wait_until() -> Callable[..., bool]:
  """``wait_until(predicate, timeout=20, step=0.05)``: poll until true;
  returns whether it became true."""
  return _wait_until


@pytest.fixture(scope="session")
def make_chunk() -> Callable[..., FrameChunk]:
  """``make_chunk(t=10, n=2, nq=8, dt=0.01, seq=0, source="train",
  steps=0)``: see :func:`braxviewer.testing.factories.frame_chunk`."""
  return frame_chunk


@pytest.fixture(scope="session")
def make_info() -> Callable[..., StreamInfo]:
  """``make_info(num_envs=2, nq=8, ...)``: see
  :func:`braxviewer.testing.factories.stream_info`."""
  return stream_info


class FakeClock:
  """A monotonic clock that moves only when a test moves it (``.t``)."""

  def __init__(self) -> None:
    self.t = 100.0

  def __call__(self) -> float:
    return self.t


@pytest.fixture
def clock() -> FakeClock:
  return FakeClock()


@pytest.fixture(scope="session")
def puck_model() -> mujoco.MjModel:
  """The synthetic stream's small model: a puck with an arm (nq 8)."""
  return mujoco.MjModel.from_xml_string(PUCK_XML)


# -- recordings ------------------------------------------------------------------

SYNTHETIC_ENVS = 4


def _make_recording(
  path: str,
  chunks: int = 40,
  *,
  max_bytes: Optional[int] = None,
  segment_bytes: Optional[int] = None,
) -> str:
  rec = Recorder(
    path,
    env=PUCK_XML,
    mode="sync",
    num_envs=SYNTHETIC_ENVS,
    max_bytes=max_bytes,
    segment_bytes=segment_bytes,
  )
  model = mujoco.MjModel.from_xml_string(PUCK_XML)
  stream = SyntheticStream(
    rec,
    model,
    num_envs=SYNTHETIC_ENVS,
    chunk_length=10,
    frame_skip=5,
    chunks_per_s=None,
    progress_every=2,
  ).start()
  assert _wait_until(lambda: stream.chunks_made >= chunks, timeout=60)
  stream.stop()
  rec.close()
  assert stream.error is None and rec.failed is None
  return path


@pytest.fixture(scope="session")
def make_recording() -> Callable[..., str]:
  """``make_recording(path, chunks=40, *, max_bytes=None,
  segment_bytes=None)``: record a synthetic stream, no training (4 pucks, 10
  frames per chunk, dt 0.05 s) at ``path``; ``max_bytes`` and
  ``segment_bytes`` as for :class:`Recorder` (several segments, thinning)."""
  return _make_recording


@dataclasses.dataclass
class RecordedRun:
  path: str
  headless: object  # HeadlessViewer that saw the same stream
  stats: RecorderStats
  warnings: List[str]


@pytest.fixture(scope="session")
def recorded_run(tmp_path_factory) -> RecordedRun:
  """TINY inverted_pendulum (generalized), trained once per session while
  recording 4 envs; the stream also went to a HeadlessViewer (a FanOut), so
  tests can compare what was recorded with what was streamed."""
  from brax import envs
  from tiny_training import TINY

  from braxviewer import HeadlessViewer
  from braxviewer.brax.training.agents.ppo import train as ppo
  from braxviewer.core.fanout import FanOut

  path = str(tmp_path_factory.mktemp("recorded") / "run")
  env = envs.get_environment("inverted_pendulum", backend="generalized")
  headless = HeadlessViewer(num_envs=4, mode="live")
  recorder = Recorder(path, env=env, mode="live")
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    ppo.train(environment=env, viewer=FanOut(headless, recorder), **TINY)
    recorder.close()
  return RecordedRun(
    path,
    headless,
    recorder.stats,
    [str(w.message) for w in caught if "braxviewer" in str(w.message)],
  )


# -- pages without a browser ----------------------------------------------------------


class RawPage:
  """A websocket client speaking viser's protocol, as a page would."""

  def __init__(self, ws):
    self._ws = ws

  def receive_all(self, quiet_s: float = 1.0) -> int:
    """Read until nothing came for ``quiet_s``; returns the messages read
    (a closed connection raises)."""
    count = 0
    while True:
      try:
        self._ws.recv(timeout=quiet_s if count else 10.0)
      except TimeoutError:
        return count
      count += 1

  def set(self, handle, value) -> None:
    self._ws.send(
      msgspec.msgpack.encode(
        {
          "type": "GuiUpdateMessage",
          "uuid": handle._impl.uuid,
          "updates": {"value": value},
        }
      )
    )
    time.sleep(0.2)


@contextlib.contextmanager
def _raw_page(
  viewer,
  origin: Optional[str] = "self",
  fov: float = 1.3,
  width: int = 1200,
  headers: Optional[Dict[str, str]] = None,
):
  """Connect like the page does; its first camera message makes viser
  count it as a page."""
  url = f"ws://127.0.0.1:{viewer.port}"
  kwargs = {"additional_headers": headers or {}}
  if origin is not None:
    kwargs["origin"] = (
      f"http://127.0.0.1:{viewer.port}" if (origin == "self") else origin
    )
  with connect(
    url, subprotocols=[f"viser-v{viser.__version__}"], open_timeout=10, **kwargs
  ) as ws:
    ws.send(
      msgspec.msgpack.encode(
        {
          "type": "ViewerCameraMessage",
          "wxyz": [1.0, 0.0, 0.0, 0.0],
          "position": [0.0, -3.0, 2.0],
          "fov": fov,
          "image_height": 700,
          "image_width": width,
          "near": 0.01,
          "far": 100.0,
          "look_at": [0.0, 0.0, 0.0],
          "up_direction": [0.0, 0.0, 1.0],
        }
      )
    )
    yield RawPage(ws)


@pytest.fixture(scope="session")
def raw_page() -> Callable[..., Any]:
  """``with raw_page(viewer, origin="self", fov=1.3, width=1200,
  headers=None) as page``: a websocket client that connects as the page
  does (``page.set(widget, value)``, ``page.receive_all()``)."""
  return _raw_page


# -- the browser -------------------------------------------------------------------


def pytest_collection_modifyitems(items: List[Any]) -> None:
  """Every test that opens Chromium is marked ``page`` (``make test-fast``
  leaves them out with ``slow``; ``make test`` runs everything)."""
  for item in items:
    if "chromium" in getattr(item, "fixturenames", ()):
      item.add_marker(pytest.mark.page)


@pytest.fixture(scope="session")
def chromium():
  """One headless Chromium for the session."""
  # The page's tests fail (not skip) without a browser: CI must run them.
  why = chromium_launch.missing(chromium_launch.executable())
  if why:
    pytest.fail(f"cannot open the page in Chromium: {why}")
  from playwright.sync_api import sync_playwright

  with sync_playwright() as pw:
    browser = chromium_launch.launch(pw)
    yield browser
    browser.close()


def _local(url: str) -> bool:
  parsed = urlparse(url)
  return parsed.scheme in ("blob", "data") or parsed.hostname in LOCAL_HOSTS


@pytest.fixture
def page(chromium):
  """A fresh page with the network cut off from everything but localhost.

  ``page.blocked`` lists the URLs of requests that were refused.
  """
  context = chromium.new_context(viewport=VIEWPORT)
  blocked: List[str] = []

  def route(r):
    if _local(r.request.url):
      r.continue_()
    else:
      blocked.append(r.request.url)
      r.abort()

  context.route("**/*", route)
  pg = context.new_page()
  pg.blocked = blocked
  yield pg
  context.close()


def _open(pg, url: str, timeout: float = 60.0) -> None:
  pg.goto(url, timeout=timeout * 1000)
  pg.wait_for_selector("canvas", timeout=timeout * 1000)
  pg.get_by_text("Connected").or_(
    pg.get_by_role("tab", name="Live")
  ).first.wait_for(timeout=timeout * 1000)


@pytest.fixture
def open_page() -> Callable:
  """``open_page(page, url)``: load the viewer and wait until it connected."""
  return _open


def _scene_pixels(pg) -> np.ndarray:
  """RGB pixels of the 3D view, left of the control panel and below the
  browser's software-rendering notice."""
  from PIL import Image

  png = pg.screenshot(clip={"x": 0, "y": 170, "width": 900, "height": 560})
  return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


@pytest.fixture
def scene_pixels() -> Callable:
  """``scene_pixels(page) -> (H, W, 3) uint8`` of the 3D view."""
  return _scene_pixels
