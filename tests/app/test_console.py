"""A quiet console by default: no third-party banner, no line over and over
(in the demos, the CLI and a user's own script); ``--verbose`` (or
``BRAXVIEWER_VERBOSE=1``, ``braxviewer.verbose()``) shows everything. The
CLI's help is plain text and comes before JAX loads; installing prints no
deprecation."""

from __future__ import annotations

import collections
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import textwrap
from typing import Dict, List, Optional

import demo_flags
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
# As tests/app/test_demos.py trains, with 4 envs on the page.
TINY_FLAGS = [*demo_flags.TINY_FLAGS, "--view-envs", "4"]
CACHE = tempfile.mkdtemp(prefix="bv-jax-cache-")
BANNERS = {  # what each one prints, in part
  "brax's maintenance notice": "not actively being maintained",
  "Warp's banner": "initialized:",
  "Warp's module lines": "load on device",
  "viser's box or lines": "viser",
}


def _run(args: List[str], verbose: bool = False, timeout: float = 600):
  env = {**os.environ, "BRAXVIEWER_COMPILE_CACHE": CACHE}
  env.pop("BRAXVIEWER_VERBOSE", None)
  if verbose:
    env["BRAXVIEWER_VERBOSE"] = "1"
  proc = subprocess.run(
    [sys.executable, *args],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=timeout,
    env=env,
  )
  out = proc.stdout + proc.stderr
  assert proc.returncode == 0, out[-3000:]
  assert "Traceback" not in out, out[-3000:]
  return out


def _banners(out: str) -> List[str]:
  return [name for name, text in BANNERS.items() if text in out]


def _repeated(out: str, most: int = 2) -> Dict[str, int]:
  """Lines printed more than ``most`` times (blank ones aside)."""
  counts = collections.Counter(
    line.strip() for line in out.splitlines() if line.strip()
  )
  return {line: n for line, n in counts.items() if n > most}


def _quiet(out: str) -> None:
  assert _banners(out) == [], out[-3000:]
  assert _repeated(out) == {}, out[-3000:]


# -- whole runs ----------------------------------------------------------------


@pytest.mark.slow
def test_the_training_demo_is_quiet_and_verbose_shows_the_banners():
  args = ["demo/training_example.py", *TINY_FLAGS, "--env", "inverted_pendulum"]
  _quiet(_run(args))
  shown = _banners(_run([*args, "--verbose"]))
  assert "brax's maintenance notice" in shown
  assert "viser's box or lines" in shown


# The README's integration, as a user's own script (no braxviewer CLI).
README_SCRIPT = """
from brax import envs
from braxviewer import WebViewerBatched
from braxviewer.brax.training.agents.ppo import train as ppo

env = envs.get_environment("inverted_pendulum")
viewer = WebViewerBatched(num_envs=4, port=0)
viewer.run()
viewer.init(env)
if {train}:
  ppo.train(
    environment=env, num_timesteps=640, num_evals=2, episode_length=20,
    num_envs=8, batch_size=8, num_minibatches=4, unroll_length=5,
    num_updates_per_batch=2, num_eval_envs=4, viewer=viewer,
  )
viewer.close()
print("DONE", flush=True)
"""


@pytest.mark.slow
def test_a_users_training_script_is_quiet():
  out = _run(["-c", README_SCRIPT.format(train=True)])
  assert "DONE" in out
  _quiet(out)


@pytest.mark.slow
def test_a_users_script_shows_the_banners_when_verbose():
  """The same script without the training: brax's notice comes as the env
  loads, viser's box as the viewer runs."""
  script = README_SCRIPT.format(train=False)
  _quiet(_run(["-c", script]))
  shown = _banners(_run(["-c", script], verbose=True))
  assert "brax's maintenance notice" in shown
  assert "viser's box or lines" in shown


def test_a_users_viewer_prints_viser_s_box_only_when_verbose():
  script = textwrap.dedent("""
    from braxviewer import WebViewerBatched
    viewer = WebViewerBatched(num_envs=4, port=0)
    viewer.run()
    viewer.close()
    """)
  assert _banners(_run(["-c", script])) == []
  out = _run(["-c", script], verbose=True)
  assert "(viser) Server stopped" in out and "Websocket" in out


@pytest.mark.slow
def test_a_playground_run_is_quiet():
  """Quiet: no Warp banner, none of its line per kernel module, MuJoCo
  Warp's solver advice once and counted (its summary says --verbose)."""
  out = _run(["demo/playground_example.py", *TINY_FLAGS])
  _quiet(out)


@pytest.mark.slow
@pytest.mark.parametrize("order", ["braxviewer first", "playground first"])
def test_warps_banner_shows_only_when_verbose(order):
  imports = ["import braxviewer", "from mujoco_playground import registry"]
  if order == "playground first":
    imports.reverse()
  script = "\n".join(imports) + "\nregistry.load('CartpoleBalance')\n"
  assert "Warp's banner" not in _banners(_run(["-c", script]))
  assert "Warp's banner" in _banners(_run(["-c", script], verbose=True))


# -- each rule, narrowly -------------------------------------------------------


NOTICES = """
import sys, warnings
import braxviewer
from braxviewer.core import console

def warn(text, module, where):
  warnings.warn_explicit(text, UserWarning, where, 480, module=module)

notice = console.BRAX_NOTICE + ". Please see MJX."
warn(notice, "brax.io.mjcf", "hidden.py")
warn(notice, "mine", "not_braxs.py")  # shown: not brax's
warn("another brax warning", "brax.io.mjcf", "other.py")  # shown
braxviewer.verbose()
warn(notice, "brax.io.mjcf", "verbose.py")  # shown now

import warp
print("warp level", warp.config.log_level)  # verbose: Warp's default, info
braxviewer.verbose(False)
print("warp level", warp.config.log_level)  # warnings and up
"""


def test_only_braxs_notice_is_filtered_and_verbose_restores_it():
  out = _run(["-c", NOTICES])
  assert "hidden.py" not in out, out
  for shown in ("not_braxs.py", "other.py", "verbose.py"):
    assert shown in out, out
  assert "warp level 20" in out and "warp level 30" in out


def test_warps_level_set_by_the_program_is_kept():
  script = textwrap.dedent("""
    import warp
    warp.config.log_level = warp.LOG_DEBUG
    import braxviewer
    print("level", warp.config.log_level)
    """)
  assert "level 10" in _run(["-c", script])


# -- the command line ----------------------------------------------------------


HELP = """
import contextlib, io, json, sys
from braxviewer.app.main import main

def run(*argv):
  buf = io.StringIO()
  with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
    try:
      code = main(list(argv))
    except SystemExit as stop:
      code = stop.code
  return [code, buf.getvalue()]

out = {}
for argv in (
  ["--help"], ["train", "--help"], ["view", "--help"], ["serve", "--help"],
  ["train", "--num-envs", "-4"], ["train", "--env", "robot_dog"],
):
  out[" ".join(argv)] = run(*argv)
out["heavy"] = [m for m in ("jax", "brax", "mujoco_playground")
                if m in sys.modules]
for command in ("replay", "export"):
  out[command + " --help"] = run(command, "--help")
from brax import envs
out["brax envs"] = sorted(envs._envs)
print(json.dumps(out))
"""


def test_help_and_bad_flags_are_plain_and_come_before_jax_loads():
  """Seconds, not 6-15: --help and flag errors load no JAX, brax or
  Playground (the train command knows brax's env names itself)."""
  from braxviewer.app import train

  out: Dict[str, Optional[list]] = json.loads(
    _run(["-c", HELP]).strip().splitlines()[-1]
  )
  assert out.pop("heavy") == []
  assert out.pop("brax envs") == list(train.ENVS)
  for argv, result in out.items():
    assert result is not None
    code, text = result
    assert "`" not in text, (argv, text)  # no RST markup
    assert code == (2 if "-4" in argv or "robot_dog" in argv else 0), argv
  assert "--num-envs must be at least 1" in out["train --num-envs -4"][1]
  assert "unknown env 'robot_dog'" in out["train --env robot_dog"][1]
  for command in ("train", "view", "serve"):
    assert "--verbose" in out[f"{command} --help"][1]
  assert "BRAXVIEWER_VERBOSE=1" in out["--help"][1]


# -- installing ----------------------------------------------------------------


def test_building_the_package_prints_no_deprecation(tmp_path):
  """The build backend's hooks (requirements, metadata, wheel), as ``pip
  install -e .`` runs them, in a copy of the project."""
  for name in ("pyproject.toml", "README.md"):
    shutil.copy(ROOT / name, tmp_path / name)
  shutil.copytree(
    ROOT / "braxviewer",
    tmp_path / "braxviewer",
    ignore=shutil.ignore_patterns("__pycache__"),
  )
  proc = subprocess.run(
    [
      sys.executable,
      "-m",
      "pip",
      "wheel",
      ".",
      "--no-deps",
      "--no-build-isolation",
      "--no-index",
      "-w",
      str(tmp_path / "dist"),
    ],
    cwd=tmp_path,
    capture_output=True,
    text=True,
    timeout=300,
  )
  out = proc.stdout + proc.stderr
  assert proc.returncode == 0, out[-3000:]
  assert list((tmp_path / "dist").glob("braxviewer-*.whl")), out
  assert "deprecat" not in out.lower(), out


@pytest.mark.parametrize("command", ["serve", "view"])
def test_ctrl_c_says_what_serve_and_view_stop(spawn, tmp_path, command):
  """They train nothing: Ctrl-C stops the server or the viewer."""
  model = tmp_path / "ball.xml"
  model.write_text(
    "<mujoco><worldbody><body><freejoint/><geom type='sphere' size='0.1'/>"
    "</body></worldbody></mujoco>"
  )
  args = [command, "--port", "0"] + ([str(model)] if command == "view" else [])
  child = spawn(["-m", "braxviewer", *args], cwd=ROOT)
  child.wait_for("Ctrl-C to quit", timeout=120)
  child.interrupt()
  assert child.finish(timeout=60) == 130
  said = "the server" if command == "serve" else "the viewer"
  assert f"stopping {said}" in child.stderr, child.stderr
  assert "stopping training" not in child.stderr, child.stderr
