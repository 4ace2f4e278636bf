"""The demos and the command line, as a newcomer runs them (no browser)."""

import pathlib
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY_FLAGS = [
  "--num-envs",
  "8",
  "--timesteps",
  "2000",
  "--evals",
  "2",
  "--port",
  "0",
  "--no-progress",
]


def _ctrl_c_enabled() -> None:
  """In the child: Ctrl-C as in a terminal, even when this test run was
  started in the background (where SIGINT is inherited as ignored)."""
  signal.signal(signal.SIGINT, signal.SIG_DFL)


def _run(args, timeout=600, **kw):
  return subprocess.run(
    [sys.executable, *args],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=timeout,
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
  ],
)
def test_each_demo_trains_streams_and_exits_cleanly(script, extra):
  _trained_and_streamed(_run([script, *TINY_FLAGS, *extra]))


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
def test_ctrl_c_stops_training_and_server_within_seconds():
  proc = subprocess.Popen(
    [
      sys.executable,
      "demo/cartpole.py",
      *TINY_FLAGS,
      "--timesteps",
      "10000000",
    ],
    cwd=ROOT,
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    text=True,
    preexec_fn=_ctrl_c_enabled,
  )
  try:
    line = proc.stdout.readline()  # the URL is printed first
    assert "viewer running at" in line
    time.sleep(2.0)  # now compiling or training
    t0 = time.time()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    stopped_in = time.time() - t0
  finally:
    if proc.poll() is None:
      proc.kill()
  assert proc.returncode == 130, err
  assert "interrupted" in err and "stopped." in err
  assert "Traceback" not in err
  # Generous bound: INTERRUPT_GRACE_S plus process teardown on a loaded box.
  assert stopped_in < 30, stopped_in


def test_training_session_joins_its_watchdog_and_frees_the_result():
  """A watchdog thread outliving the session would free the trained params
  during interpreter shutdown, which aborts the process (seen in CI)."""
  import gc
  import threading
  import weakref

  from braxviewer import HeadlessViewer, cli

  class Params:  # stands in for the trained params a session holds
    pass

  params = Params()
  watched = weakref.ref(params)
  with cli.training_session(HeadlessViewer(1)) as session:
    session.train(lambda **kw: watched())
    assert any(t.name == "braxviewer-interrupts" for t in threading.enumerate())
  assert not any(
    t.name == "braxviewer-interrupts" for t in threading.enumerate()
  )
  del session, params
  gc.collect()
  assert watched() is None  # nothing left in another thread holds it


@pytest.mark.slow
def test_keep_open_serves_after_training_until_ctrl_c():
  """`make demo` keeps the page up after training; Ctrl-C quits quietly."""
  proc = subprocess.Popen(
    [
      sys.executable,
      "demo/training_example.py",
      *TINY_FLAGS,
      "--env",
      "inverted_pendulum",
      "--view-envs",
      "2",
      "--keep-open",
    ],
    cwd=ROOT,
    stdout=subprocess.PIPE,
    stderr=subprocess.STDOUT,
    text=True,
    preexec_fn=_ctrl_c_enabled,
  )
  try:
    seen = []
    for line in proc.stdout:
      seen.append(line)
      if "stays up" in line:
        break
    assert "training done" in "".join(seen), "".join(seen)
    time.sleep(1.0)
    assert proc.poll() is None  # still serving
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=60)
  finally:
    if proc.poll() is None:
      proc.kill()
  assert proc.returncode == 130, rest
  assert "Traceback" not in rest and "stopping training" not in rest
