"""Bad input to the scene: a clear ValueError that says what was wrong and
what to do, or, for bad frames, a visible marker and no exception."""

import warnings

import mujoco
import numpy as np
import pytest

from braxviewer.core.frames import FrameChunk
from braxviewer.scene.batched import (
  BatchedScene,
  concatenate_envs_xml,
  grid_offsets,
)

ARM = """
<mujoco model="arm">
  <worldbody>
    <body name="base" pos="0 0 0.3">
      <freejoint/>
      <geom type="box" size="0.1 0.1 0.1"/>
      <body name="link" pos="0.1 0 0">
        <joint type="hinge" axis="0 0 1"/>
        <geom type="capsule" fromto="0 0 0 0.2 0 0" size="0.02"/>
      </body>
    </body>
  </worldbody>
</mujoco>
"""


def test_malformed_xml_names_mujocos_message_and_the_source():
  with pytest.raises(ValueError) as err:
    concatenate_envs_xml("<mujoco><worldbody><body></worldbody></mujoco>", 4)
  message = str(err.value)
  assert "MuJoCo could not load the model from the XML string" in message
  assert "XML parse error" in message or "Error" in message
  assert "<mujoco><worldbody>" in message  # where it came from


def test_xml_that_compiles_badly_names_the_file(tmp_path):
  path = tmp_path / "broken.xml"
  path.write_text(
    '<mujoco><worldbody><geom type="mesh" mesh="nope"/></worldbody></mujoco>'
  )
  with pytest.raises(ValueError, match=r"broken\.xml.*mesh 'nope' not found"):
    BatchedScene(str(path), 2)


def test_missing_asset_files_say_how_to_pass_them():
  xml = (
    '<mujoco><asset><mesh name="m" file="missing.obj"/></asset>'
    '<worldbody><geom type="mesh" mesh="m"/></worldbody></mujoco>'
  )
  with pytest.raises(ValueError, match=r"missing\.obj.*assets=.*model_dir="):
    concatenate_envs_xml(xml, 2)


def test_a_string_that_is_neither_xml_nor_a_file():
  with pytest.raises(ValueError, match="no such file, and it is not XML"):
    concatenate_envs_xml("no/such/model.xml", 2)


def test_grid_dims_too_small_for_num_envs():
  with pytest.raises(
    ValueError,
    match=r"grid_dims \(2, 2, 1\) holds 4 envs"
    r" but num_envs is 7.*at least 7",
  ):
    concatenate_envs_xml(ARM, 7, grid_dims=(2, 2))
  with pytest.raises(ValueError, match="holds 4 envs but num_envs is 5"):
    BatchedScene(mujoco.MjModel.from_xml_string(ARM), 5, grid_dims=(2, 2, 1))
  with pytest.raises(ValueError, match="whole numbers >= 1"):
    grid_offsets(4, (2, 0, 2), (1, 1, 1))


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "4"])
def test_num_envs_must_be_a_whole_number_from_one(bad):
  with pytest.raises(ValueError, match="num_envs"):
    concatenate_envs_xml(ARM, bad)
  with pytest.raises(ValueError, match="num_envs"):
    BatchedScene(mujoco.MjModel.from_xml_string(ARM), bad)


@pytest.mark.parametrize("bad", [(1, 2, 3, 4), (1, np.nan, 0), "far", (1,)])
def test_env_offset_must_be_finite_spacing(bad):
  with pytest.raises(ValueError, match="env_offset"):
    BatchedScene(mujoco.MjModel.from_xml_string(ARM), 2, env_offset=bad)


def test_qpos_whose_width_is_not_nq():
  scene = BatchedScene(mujoco.MjModel.from_xml_string(ARM), 3)
  with pytest.raises(
    ValueError,
    match=r"shape \(5, 3, 7\).*\(\.\.\., 3, 8\)"
    r".*Stream the same model",
  ):
    scene.poses_from_qpos(np.zeros((5, 3, 7)))
  with pytest.raises(ValueError, match="3 envs"):
    scene.poses_from_qpos(np.zeros((5, 4, 8)))
  chunk = FrameChunk(
    seq=0,
    source="train",
    env_steps=0,
    dt=0.1,
    reward=np.zeros((5, 3)),
    done=np.zeros((5, 3)),
    truncation=np.zeros((5, 3)),
    metrics={},
    wall_time=0.0,
    qpos=np.zeros((5, 3, 9)),
  )
  with pytest.raises(ValueError, match="generalized positions"):
    scene.poses(chunk)


def test_link_poses_that_do_not_match_the_model():
  scene = BatchedScene(mujoco.MjModel.from_xml_string(ARM), 3)
  with pytest.raises(
    ValueError,
    match=r"\(\.\.\., 3, 2, 3\).*\(\.\.\., 3, 2,"
    r" 4\)",
  ):
    scene.poses_from_links(np.zeros((4, 3, 5, 3)), np.zeros((4, 3, 5, 4)))
  with pytest.raises(ValueError, match="same leading axes"):
    scene.poses_from_links(np.zeros((4, 3, 2, 3)), np.zeros((2, 3, 2, 4)))


def test_nan_or_inf_marks_only_that_env_at_that_frame():
  model = mujoco.MjModel.from_xml_string(ARM)
  scene = BatchedScene(model, 4)
  rng = np.random.default_rng(0)
  qpos = np.tile(model.qpos0, (6, 4, 1)) + 0.1 * rng.standard_normal((6, 4, 8))
  clean = scene.poses_from_qpos(qpos)
  bad = qpos.copy()
  bad[2, 1, 0] = np.nan
  bad[4, 3, 7] = np.inf
  with warnings.catch_warnings():
    warnings.simplefilter("error")  # nothing raises, nothing warns
    poses = scene.poses_from_qpos(bad)
  expect = np.ones((6, 4), bool)
  expect[2, 1] = expect[4, 3] = False
  np.testing.assert_array_equal(poses.valid, expect)
  np.testing.assert_array_equal(poses.xpos[expect], clean.xpos[expect])
  # an invalid env is drawn at rest in its own cell, never as NaN
  rest = scene.rest_poses()
  np.testing.assert_array_equal(poses.xpos[2, 1], rest.xpos[1])
  assert np.isfinite(poses.xpos).all() and np.isfinite(poses.xquat).all()


def test_nan_in_link_poses_marks_only_that_env():
  scene = BatchedScene(mujoco.MjModel.from_xml_string(ARM), 2)
  pos = np.zeros((3, 2, 2, 3))
  rot = np.tile([1.0, 0, 0, 0], (3, 2, 2, 1))
  rot[1, 1, 0, 2] = np.nan
  poses = scene.poses_from_links(pos, rot)
  np.testing.assert_array_equal(
    poses.valid, [[True, True], [True, False], [True, True]]
  )
  assert np.isfinite(poses.xquat).all()


def test_batched_model_of_a_model_mujoco_no_longer_holds_asks_for_the_xml():
  model = mujoco.MjModel.from_xml_string(ARM)
  mujoco.MjModel.from_xml_string(
    "<mujoco><worldbody><geom size='1'/></worldbody></mujoco>"
  )  # loaded after
  scene = BatchedScene(model, 2)
  with pytest.raises(
    ValueError, match="needs the model's XML.*XML text or file path"
  ):
    _ = scene.batched_model
