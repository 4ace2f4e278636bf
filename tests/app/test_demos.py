"""The demos and the command line, as a newcomer runs them (no browser)."""

import os
import pathlib
import re
import socket
import subprocess
import sys
import tempfile
import time

from demo_flags import TINY_FLAGS
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


# Where the demos would keep JAX's compilation cache (not the user's ~/.cache).
CACHE = tempfile.mkdtemp(prefix="bv-jax-cache-")
ENV = {**os.environ, "BRAXVIEWER_COMPILE_CACHE": CACHE}


def _run(args, timeout=600, **kw):
  return subprocess.run(
    [sys.executable, *args],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=timeout,
    env=ENV,
    **kw,
  )


def _trained_and_streamed(proc) -> None:
  out = proc.stdout + proc.stderr
  assert proc.returncode == 0, out[-3000:]
  assert "Traceback" not in out
  assert re.search(r"viewer running at http://127\.0\.0\.1:\d+", proc.stdout)
  assert re.search(r"step\s+0\s+eval reward", proc.stderr)
  done = re.search(
    r"training done in \d+ s; (\d+) chunks streamed, (\d+)"
    r" frames shown",
    proc.stderr,
  )
  assert done, proc.stderr[-2000:]
  assert int(done.group(1)) > 0 and int(done.group(2)) > 0


@pytest.mark.slow
@pytest.mark.parametrize(
  "script,extra",
  [
    ("demo/cartpole.py", ["--view-envs", "1"]),
    ("demo/cartpole_batched.py", ["--view-envs", "4"]),
    (
      "demo/training_example.py",
      ["--view-envs", "4", "--env", "inverted_pendulum"],
    ),
    ("demo/playground_example.py", ["--view-envs", "4"]),
    ("demo/custom_loop.py", ["--view-envs", "4"]),
  ],
)
def test_each_demo_trains_streams_and_exits_cleanly(script, extra):
  _trained_and_streamed(_run([script, *TINY_FLAGS, *extra]))
  # the compile cache: kept on a GPU; on a CPU off (jaxlib's CPU loader
  # once hung loading it)
  import jax

  assert bool(os.listdir(CACHE)) == (jax.default_backend() != "cpu")


def test_cli_help_lists_the_commands():
  proc = _run(["-m", "braxviewer", "--help"])
  assert proc.returncode == 0
  assert "train" in proc.stdout and "view" in proc.stdout
  proc = _run(["-m", "braxviewer", "train", "--help"])
  assert proc.returncode == 0
  for flag in (
    "--num-envs",
    "--view-envs",
    "--timesteps",
    "--port",
    "--host",
    "--mode",
    "--seed",
    "--env",
    "--backend",
  ):
    assert flag in proc.stdout


def _one_error_line(proc, *needles):
  assert proc.returncode == 2, proc.stdout + proc.stderr
  lines = [line for line in proc.stderr.splitlines() if line.strip()]
  errors = [line for line in lines if "error" in line]
  assert len(errors) == 1, proc.stderr
  assert "Traceback" not in proc.stderr
  for needle in needles:
    assert needle in errors[0], errors[0]


@pytest.mark.parametrize(
  "args,needles",
  [
    (["--env", "robot_dog"], ["unknown env 'robot_dog'", "ant"]),
    (["--num-envs", "-4"], ["--num-envs must be at least 1", "-4"]),
    (["--timesteps", "0"], ["--timesteps must be at least 1"]),
    (
      ["--view-envs", "64", "--num-envs", "16"],
      ["--view-envs (64)", "--num-envs (16)"],
    ),
    (["--mode", "fast"], ["invalid choice: 'fast'"]),
  ],
)
def test_bad_flags_give_one_clear_line_before_any_compile(args, needles):
  _one_error_line(
    _run(["-m", "braxviewer", "train", *args], timeout=120), *needles
  )


def test_a_port_in_use_gives_one_clear_line():
  with socket.socket() as busy:
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    proc = _run(["-m", "braxviewer", "train", "--port", str(port)], timeout=120)
  assert proc.returncode == 2, proc.stdout + proc.stderr
  assert f"port {port}" in proc.stderr and "in use" in proc.stderr
  assert "Traceback" not in proc.stderr


def test_view_reports_a_missing_or_broken_model_in_one_line(tmp_path):
  _one_error_line(
    _run(["-m", "braxviewer", "view", str(tmp_path / "no.xml")]),
    "no such MJCF file",
  )
  bad = tmp_path / "bad.xml"
  bad.write_text("<mujoco><worldbody><geom type='boxx'/></worldbody></mujoco>")
  _one_error_line(
    _run(["-m", "braxviewer", "view", str(bad)]), "MuJoCo cannot load", "boxx"
  )


def test_view_serves_a_model_grid(tmp_path):
  ant = ROOT / ".venv/lib/python3.11/site-packages/brax/envs/assets/ant.xml"
  if not ant.exists():
    import brax

    ant = pathlib.Path(brax.__file__).parent / "envs/assets/ant.xml"
  proc = _run(
    [
      "-m",
      "braxviewer",
      "view",
      str(ant),
      "--num-envs",
      "9",
      "--port",
      "0",
      "--exit-after",
      "1",
    ],
    timeout=120,
  )
  assert proc.returncode == 0, proc.stderr
  assert "showing 9 copies" in proc.stdout


@pytest.mark.slow
def test_ctrl_c_stops_training_and_server_within_seconds(spawn):
  child = spawn(
    ["demo/cartpole.py", *TINY_FLAGS, "--timesteps", "10000000"],
    cwd=ROOT,
    env=ENV,
  )
  line = child.wait_for("viewer running at")
  assert child.stdout.startswith(line)  # the URL is printed first
  time.sleep(2.0)  # now compiling or training
  t0 = time.time()
  child.interrupt()
  code = child.finish(timeout=60)
  stopped_in = time.time() - t0
  err = child.stderr
  assert code == 130, err
  assert "Ctrl-C: stopping" in err and "stopped" in err
  assert "Traceback" not in err
  # Generous bound: INTERRUPT_GRACE_S plus process teardown on a loaded box.
  assert stopped_in < 30, stopped_in


def test_training_session_joins_its_watchdog_and_frees_the_result():
  """A watchdog thread outliving the session would free the trained params
  during interpreter shutdown, which aborts the process (seen in CI)."""
  import gc
  import threading
  import weakref

  from braxviewer import HeadlessViewer
  from braxviewer.app import cli

  class Params:  # stands in for the trained params a session holds
    pass

  params = Params()
  watched = weakref.ref(params)
  with cli.training_session(HeadlessViewer(1)) as session:
    session.train(lambda **kw: watched())
    assert any(t.name == "braxviewer-ctrl-c" for t in threading.enumerate())
  assert not any(t.name == "braxviewer-ctrl-c" for t in threading.enumerate())
  del session, params
  gc.collect()
  assert watched() is None  # nothing left in another thread holds it


@pytest.mark.slow
def test_keep_open_serves_after_training_until_ctrl_c(spawn):
  """`make demo` keeps the page up after training; Ctrl-C quits quietly."""
  child = spawn(
    [
      "demo/training_example.py",
      *TINY_FLAGS,
      "--env",
      "inverted_pendulum",
      "--view-envs",
      "2",
      "--keep-open",
    ],
    cwd=ROOT,
    env=ENV,
    merge_stderr=True,
  )
  child.wait_for("stays up")
  assert "training done" in child.stdout, child.stdout
  time.sleep(1.0)
  assert child.running()  # still serving
  shown = len(child.stdout)
  child.interrupt()
  code = child.finish(timeout=60)
  rest = child.stdout[shown:]
  assert code == 130, rest
  assert "Traceback" not in rest and "stopping training" not in rest


# The original project's batched cartpole demo, as its README shows it (only
# its public calls): its own import path, the grid's concatenated XML for
# viewer.init, training on the single env, serving until Ctrl-C, stop().
ORIGINAL_DEMO = """
import functools, sys, time
sys.path.insert(0, "demo")  # the user's own CartPole class
from cartpole import CARTPOLE_XML as xml_model, CartPole
from braxviewer.WebViewerBatched import WebViewerBatched
from braxviewer.brax.brax.training.agents.ppo import train as ppo

num_parallel_envs = 8
grid_dims = (4, 2, 1)
env_offset = (4.0, 4.0, 2.0)
viewer = WebViewerBatched(grid_dims=grid_dims, env_offset=env_offset, port=0)
viewer.run()
concatenated_xml = WebViewerBatched.concatenate_envs_xml(
    xml_string=xml_model, num_envs=num_parallel_envs, grid_dims=grid_dims,
    env_offset=env_offset)
env_for_visualization_init = CartPole(xml_model=concatenated_xml)
viewer.init(env_for_visualization_init)
env_for_training = CartPole(xml_model=xml_model)
train_fn = functools.partial(
    ppo.train, num_timesteps=2000, num_evals=2, episode_length=20,
    num_envs=num_parallel_envs, batch_size=8, num_minibatches=4,
    unroll_length=5, num_updates_per_batch=2, num_eval_envs=8,
    viewer=viewer)
make_inference_fn, params, _ = train_fn(environment=env_for_training)
try:  # (the line below tells the test to press Ctrl-C: inside the try)
  print("TRAINED", viewer.stats()["chunks_received"], flush=True)
  while True:
    time.sleep(1)
except KeyboardInterrupt:
  viewer.stop()
print("STOPPED", flush=True)
"""


@pytest.mark.slow
def test_the_original_projects_batched_demo_runs_unchanged_and_stops_on_ctrl_c(
  spawn,
):
  child = spawn(["-c", ORIGINAL_DEMO], cwd=ROOT, env=ENV)
  line = child.wait_for("TRAINED")
  assert int(line.split()[1]) > 0  # chunks reached the page
  child.interrupt()
  code = child.finish(timeout=60)
  err = child.stderr
  assert code == 0 and "STOPPED" in child.stdout, err[-3000:]
  assert "Traceback" not in err
  assert "braxviewer:" not in err  # no warning, no "stopped unexpectedly"


def test_a_ctrl_c_lost_in_a_gc_callback_prints_no_traceback():
  """Python cannot raise a Ctrl-C that lands in a garbage-collector callback
  (JAX has one); it reports it as 'Exception ignored'. The session's
  watchdog stops the run anyway, so that report is left out, and only
  that one."""
  from types import SimpleNamespace

  from braxviewer.app import cli

  seen = []
  previous = sys.unraisablehook

  def keep(report) -> None:
    seen.append(report)

  sys.unraisablehook = keep
  other = SimpleNamespace(exc_value=ValueError("a real problem"))
  try:
    with cli.training_session(SimpleNamespace(close=lambda: None)):
      sys.unraisablehook(SimpleNamespace(exc_value=KeyboardInterrupt()))
      sys.unraisablehook(other)
    assert sys.unraisablehook is keep  # put back after the session
  finally:
    sys.unraisablehook = previous
  assert seen == [other]
