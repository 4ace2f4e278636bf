"""``python -m braxviewer view``: MJCF files (meshes elsewhere with
--assets), MuJoCo Playground envs by name, and bad names with suggestions."""

from __future__ import annotations

import pathlib
import subprocess
import sys

from meshes import TETRA_OBJ
import pytest

from braxviewer.app import view as view_source

ROOT = pathlib.Path(__file__).resolve().parents[2]

MESHY = """
<mujoco>
  <asset><mesh name="tetra" file="tetra.obj"/></asset>
  <worldbody>
    <body name="piece" pos="0 0 0.2">
      <joint type="hinge" axis="0 0 1"/>
      <geom type="mesh" mesh="tetra"/>
    </body>
  </worldbody>
</mujoco>
"""


def _view(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
  return subprocess.run(
    [sys.executable, "-m", "braxviewer", "view", *args],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=timeout,
  )


def _error_line(proc: subprocess.CompletedProcess) -> str:
  assert proc.returncode == 2, proc.stdout + proc.stderr
  assert "Traceback" not in proc.stderr
  errors = [line for line in proc.stderr.splitlines() if "error" in line]
  assert len(errors) == 1, proc.stderr
  return errors[0]


def test_view_help_names_envs_and_the_assets_option():
  proc = _view("--help", timeout=60)
  assert proc.returncode == 0, proc.stderr
  assert "Playground" in proc.stdout and "--assets" in proc.stdout


def test_view_starts_a_playground_env_by_name(spawn):
  child = spawn(
    [
      "-m",
      "braxviewer",
      "view",
      "ReacherEasy",
      "--num-envs",
      "4",
      "--port",
      "0",
      "--exit-after",
      "1",
    ],
    cwd=ROOT,
  )
  child.wait_for("viewer running at", timeout=180)
  line = child.wait_for("showing 4 copies", timeout=60)
  assert "ReacherEasy (MuJoCo Playground env)" in line
  assert child.finish(timeout=60) == 0, child.stderr
  assert "Traceback" not in child.stderr


def test_a_misspelt_env_name_gets_suggestions():
  line = _error_line(_view("reacher_easy"))
  assert "no such MJCF file or env" in line
  assert "Did you mean" in line and "ReacherEasy" in line


def test_meshes_in_another_directory_come_with_assets(tmp_path):
  (tmp_path / "models").mkdir()
  (tmp_path / "meshes").mkdir()
  xml = tmp_path / "models" / "meshy.xml"
  xml.write_text(MESHY)
  (tmp_path / "meshes" / "tetra.obj").write_bytes(TETRA_OBJ)
  line = _error_line(_view(str(xml), "--port", "0", "--exit-after", "0"))
  assert "MuJoCo cannot load" in line and "--assets DIR" in line
  proc = _view(
    str(xml),
    "--assets",
    str(tmp_path / "meshes"),
    "--num-envs",
    "2",
    "--port",
    "0",
    "--exit-after",
    "0.5",
  )
  assert proc.returncode == 0, proc.stderr
  assert "showing 2 copies" in proc.stdout


def test_names_are_told_from_files():
  assert view_source.looks_like_file("robot.xml")
  assert view_source.looks_like_file("models/robot")
  assert not view_source.looks_like_file("ReacherEasy")


def test_suggestions_ignore_case_and_complete_prefixes():
  names = ["ReacherEasy", "ReacherHard", "CartpoleBalance", "ant"]
  assert view_source.suggestions("reachereasy", names)[0] == "ReacherEasy"
  assert "CartpoleBalance" in view_source.suggestions("cartpole", names)
  assert view_source.suggestions("zzz", names) == []


def test_assets_from_nested_directories_by_path_and_by_name(tmp_path):
  (tmp_path / "a").mkdir()
  (tmp_path / "a" / "x.obj").write_bytes(b"x")
  (tmp_path / "y.png").write_bytes(b"y")
  files = view_source.read_assets(str(tmp_path))
  assert files == {"a/x.obj": b"x", "x.obj": b"x", "y.png": b"y"}
  with pytest.raises(view_source.ViewError, match="no such directory"):
    view_source.read_assets(str(tmp_path / "nope"))
