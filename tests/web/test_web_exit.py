"""A script exits quietly with a page open on its viewer, every way it can
end: it returns, raises, is stopped by Ctrl-C or calls ``sys.exit``, with or
without ``viewer.close()``; so does the viewer server on Ctrl-C. Its output
holds what the script prints and Python's own traceback where it has one,
nothing from braxviewer, viser, websockets or asyncio. No JAX.

The page is a real one (headless Chromium, one for the session), receiving
frames as the script ends.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

ROOT = os.path.dirname(
  os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
)
URL_LINE = "braxviewer: viewer running at "

# argv: how it ends (WAYS), "close" or "no-close". A stream of frames runs
# until the end.
SCRIPT = """
import sys
import threading
import time

import mujoco

from braxviewer import WebViewerBatched
from braxviewer.testing.synthetic import PUCK_XML, SyntheticStream

way, close = sys.argv[1], sys.argv[2] == "close"
viewer = WebViewerBatched(num_envs=2, port=0)
viewer.run()
viewer.init(PUCK_XML)
model = mujoco.MjModel.from_xml_string(PUCK_XML)
stream = SyntheticStream(
  viewer, model, num_envs=2, chunk_length=10, chunks_per_s=20
).start()
deadline = time.monotonic() + 60
while not (viewer.clients() and viewer.stats()["frames_shown"] > 3):
  if time.monotonic() > deadline:
    print("no page came", flush=True)
    sys.exit(9)
  time.sleep(0.05)
print("watched", flush=True)


def end():
  stream.stop()  # a daemon thread left in mujoco can crash Python's exit
  if close:
    viewer.close()


def train_on():
  time.sleep(2.0)  # the main thread has ended; the page still plays
  print(f"trained on, serving: {viewer.serving}", flush=True)
  end()


if way == "return":
  end()
elif way == "exception":
  try:
    raise RuntimeError("the script failed")
  finally:
    end()
elif way == "ctrl-c":
  try:
    print("sleeping", flush=True)
    while True:
      time.sleep(0.1)
  finally:
    end()
elif way == "sys.exit":
  end()
  sys.exit(3)
elif way == "thread":  # a thread of its own outlives the main thread
  threading.Thread(target=train_on).start()
print("done", flush=True)
"""

# way -> (exit status, the script's stdout after the URL line, the last line
# of Python's traceback or None: no stderr at all)
WAYS = {
  "return": (0, ["watched", "done"], None),
  "exception": (1, ["watched"], "RuntimeError: the script failed"),
  # an uncaught KeyboardInterrupt ends Python by SIGINT (Python >= 3.8)
  "ctrl-c": (-signal.SIGINT, ["watched", "sleeping"], "KeyboardInterrupt"),
  "sys.exit": (3, ["watched"], None),
}


def assert_only_pythons_traceback(stderr: str, script: str, last) -> None:
  """``stderr`` is empty, or one traceback of Python's own through the
  script's lines only, ending in ``last``."""
  if last is None:
    assert stderr == "", stderr
    return
  lines = stderr.splitlines()
  assert lines[0] == "Traceback (most recent call last):", stderr
  assert lines[-1] == last, stderr
  assert stderr.count("Traceback") == 1, stderr
  files = [line for line in lines if line.lstrip().startswith("File ")]
  assert files and all(f'"{script}"' in line for line in files), stderr


def start(spawn, tmp_path, page, open_page, *args: str):
  """The script, with a page open on its viewer and receiving frames."""
  script = tmp_path / "script.py"
  script.write_text(SCRIPT)
  child = spawn([str(script), *args])
  url = child.wait_for(URL_LINE, timeout=60).strip()[len(URL_LINE) :]
  open_page(page, url)
  child.wait_for("watched", timeout=60)
  return child, str(script)


@pytest.mark.parametrize("close", ["close", "no-close"])
@pytest.mark.parametrize("way", list(WAYS))
def test_a_script_with_a_page_open_exits_quietly_every_way(
  way, close, tmp_path, spawn, page, open_page
):
  child, script = start(spawn, tmp_path, page, open_page, way, close)
  if way == "ctrl-c":
    child.wait_for("sleeping")
    time.sleep(0.5)
    child.interrupt()
  code = child.finish(timeout=30)  # a hang fails here
  status, printed, last = WAYS[way]
  assert code == status, child.stdout + child.stderr
  lines = child.stdout.splitlines()
  assert lines[0].startswith(URL_LINE) and lines[1:] == printed, child.stdout
  assert_only_pythons_traceback(child.stderr, script, last)


def test_a_thread_that_outlives_the_script_keeps_its_viewer_and_exits_quietly(
  tmp_path, spawn, page, open_page
):
  child, _ = start(spawn, tmp_path, page, open_page, "thread", "no-close")
  assert child.finish(timeout=30) == 0, child.stdout + child.stderr
  lines = child.stdout.splitlines()
  assert lines[1:] == ["watched", "done", "trained on, serving: True"], (
    child.stdout
  )
  assert child.stderr == ""


def test_the_viewer_server_with_a_page_open_stops_quietly_on_ctrl_c(
  spawn, page, open_page
):
  child = spawn(["-m", "braxviewer", "serve", "--port", "0"], cwd=ROOT)
  url = child.wait_for(URL_LINE, timeout=60).strip()[len(URL_LINE) :]
  open_page(page, url)
  child.wait_for("Ctrl-C to quit")
  time.sleep(1.0)  # the page is on and polls
  child.interrupt()
  assert child.finish(timeout=30) == 130, child.stdout + child.stderr
  for line in (child.stdout + child.stderr).splitlines():
    assert not line.strip() or line.startswith("braxviewer: "), (
      child.stdout + child.stderr
    )
  assert "braxviewer: stopped." in child.stderr


def test_a_viewer_left_open_is_closed_as_the_main_thread_ends(tmp_path, spawn):
  """Before Python stops its thread pools (viser's among them) and before
  the script's atexit handlers, as close() would close it then."""
  script = tmp_path / "left_open.py"
  script.write_text(
    "import atexit\n"
    "from braxviewer import WebViewerBatched\n"
    "viewer = WebViewerBatched(num_envs=2, port=0).run()\n"
    "atexit.register(lambda: print('at exit, serving:', viewer.serving))\n"
    "print('serving:', viewer.serving, flush=True)\n"
  )
  child = spawn([str(script)])
  assert child.finish(timeout=30) == 0, child.stdout + child.stderr
  assert child.stdout.splitlines()[1:] == [
    "serving: True",
    "at exit, serving: False",
  ]
  assert child.stderr == ""
