"""Ctrl-C ends a training run promptly, in a script, the CLI and a notebook
cell, in the compile and in the training phase, and prints no traceback.

Each child prints when XLA compiles end (JAX's own monitoring events) and
when training reports progress, so the tests can tell the phases apart and
measure from the compile's end. Bounds are the issue's: the process (or the
cell) ends within 5 s of the compile ending, or of a Ctrl-C during training.
"""

from __future__ import annotations

import os
import pathlib
import signal
import textwrap
import threading
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BOUND_S = 5.0

# A user's script: brax PPO with a viewer, far more steps than it will run.
TRAINING = textwrap.dedent(
  """
  import time
  import jax
  from brax import envs
  from braxviewer import WebViewerBatched
  from braxviewer.brax.training.agents.ppo import train as ppo

  def compiled(event, duration, **kw):
    if event == "/jax/core/compile/backend_compile_duration":
      print(f"compile ended {time.time():.3f}", flush=True)

  jax.monitoring.register_event_duration_secs_listener(compiled)
  env = envs.get_environment("inverted_pendulum", backend="generalized")
  viewer = WebViewerBatched(num_envs=2, port=0)
  viewer.run()
  viewer.init(env)
  print("training starts", flush=True)
  ppo.train(
    environment=env, num_timesteps=100_000_000, num_evals=1000,
    episode_length=50, num_envs=8, batch_size=8, num_minibatches=2,
    unroll_length=5, num_updates_per_batch=1, progress_bar=False,
    progress_fn=lambda step, m: print(f"progress {step}", flush=True),
    viewer=viewer,
  )
  print("returned", flush=True)
  """
)


def _compile_ends(text: str) -> list:
  return [
    float(line.split()[-1])
    for line in text.splitlines()
    if line.startswith("compile ended")
  ]


def _no_traceback(text: str) -> None:
  assert "Traceback" not in text, text
  assert "KeyboardInterrupt" not in text, text


@pytest.mark.slow
def test_ctrl_c_in_a_script_during_the_compile_stops_right_after_it(spawn):
  child = spawn(["-c", TRAINING], cwd=ROOT, merge_stderr=True)
  child.wait_for("training starts", timeout=300)
  time.sleep(1.0)  # in the first compiles of ppo.train's set-up
  child.interrupt()
  child.wait_for("stopping after the compile", timeout=BOUND_S)
  code = child.finish(timeout=600)
  ended = time.time()
  out = child.stdout
  assert code == 130, out
  assert "training stopped (Ctrl-C)" in out and "returned" not in out
  _no_traceback(out)
  compiles = _compile_ends(out)
  assert compiles, out
  assert ended - compiles[-1] < BOUND_S, (ended - compiles[-1], out)


@pytest.mark.slow
def test_ctrl_c_in_a_script_during_training_stops_within_seconds(spawn):
  child = spawn(["-c", TRAINING], cwd=ROOT, merge_stderr=True)
  child.wait_for("progress 0", timeout=600)
  child.wait_for("progress", timeout=600)  # an epoch later: training runs
  t0 = time.time()
  child.interrupt()
  child.wait_for("stopping training", timeout=BOUND_S)
  code = child.finish(timeout=60)
  took = time.time() - t0
  assert code == 130, child.stdout
  assert took < BOUND_S, (took, child.stdout)
  _no_traceback(child.stdout)


@pytest.mark.slow
def test_ctrl_c_in_the_cli_during_training_stops_within_seconds(spawn):
  child = spawn(
    [
      "-m",
      "braxviewer",
      "train",
      "--env",
      "inverted_pendulum",
      "--num-envs",
      "8",
      "--view-envs",
      "2",
      "--timesteps",
      "100000000",
      "--evals",
      "1000",
      "--port",
      "0",
      "--no-progress",
    ],
    cwd=ROOT,
    merge_stderr=True,
  )
  child.wait_for("eval reward", timeout=600)
  child.wait_for("eval reward", timeout=600)  # an epoch later
  t0 = time.time()
  child.interrupt()
  code = child.finish(timeout=60)
  took = time.time() - t0
  assert code == 130, child.stdout
  assert took < BOUND_S, (took, child.stdout)
  _no_traceback(child.stdout)


# -- a notebook cell (Jupyter's Kernel -> Interrupt: SIGINT to the kernel) ---------


def _cell_text(cell) -> str:
  return "".join(o.get("text", "") for o in list(cell.outputs))


def _notebook_run(wait_for: str, count: int):
  """Run TRAINING in a notebook cell; interrupt the kernel once the cell's
  output holds ``wait_for`` ``count`` times. Returns (the cell's outputs,
  seconds from the interrupt to the cell's end, its text, the end's time)."""
  from nbclient import NotebookClient
  from nbclient.exceptions import CellExecutionError
  import nbformat

  nb = nbformat.v4.new_notebook()
  nb.cells.append(nbformat.v4.new_code_cell(TRAINING))
  cell = nb.cells[0]
  client = NotebookClient(
    nb,
    kernel_name="python3",
    timeout=900,
    resources={"metadata": {"path": ROOT}},
  )
  done = threading.Event()

  def run():
    try:
      client.execute()
    except CellExecutionError:
      pass  # the interrupted cell: its error output is checked below
    finally:
      done.set()

  threading.Thread(target=run, daemon=True).start()
  deadline = time.time() + 900
  while _cell_text(cell).count(wait_for) < count:
    assert not done.is_set(), _cell_text(cell)
    assert time.time() < deadline, _cell_text(cell)
    time.sleep(0.1)
  t0 = time.time()
  # Kernel -> Interrupt: SIGINT to the kernel's process group, as Jupyter
  # sends it (nbclient's own call is a coroutine of its event loop).
  os.killpg(client.km.provisioner.pgid, signal.SIGINT)
  # The cell ends with its error output (the kernel's shutdown comes after).
  while not any(o.get("output_type") == "error" for o in list(cell.outputs)):
    assert not done.is_set(), _cell_text(cell)
    assert time.time() < t0 + 300, "the cell did not end after the interrupt"
    time.sleep(0.05)
  ended = time.time()
  assert done.wait(300), "the notebook did not end"
  return list(cell.outputs), ended - t0, _cell_text(cell), ended


def _error_of(outputs) -> dict:
  errors = [o for o in outputs if o.get("output_type") == "error"]
  assert errors, outputs
  return errors[0]


@pytest.mark.slow
def test_interrupting_a_notebook_cell_during_training_ends_it_in_one_line():
  outputs, took, text, _ = _notebook_run("progress", 2)
  error = _error_of(outputs)
  assert error["ename"] == "KeyboardInterrupt"
  assert error["traceback"] == ["braxviewer: training stopped (Ctrl-C)."]
  assert took < BOUND_S, (took, text)
  assert "stopping training" in text


@pytest.mark.slow
def test_interrupting_a_notebook_cell_during_the_compile_ends_it_after():
  outputs, _, text, ended = _notebook_run("training starts", 1)
  error = _error_of(outputs)
  assert error["traceback"] == ["braxviewer: training stopped (Ctrl-C)."]
  compiles = _compile_ends(text)
  assert compiles, text
  assert ended - compiles[-1] < BOUND_S, (ended - compiles[-1], text)
