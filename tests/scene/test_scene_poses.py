"""BatchedScene: poses from qpos and link chunks, the batched model, and
what renderers (mjviser) take."""

import importlib.util
import pathlib
import socket

import mujoco
import numpy as np
import pytest

from braxviewer.core.frames import FrameChunk
from braxviewer.scene.batched import BatchedScene
from braxviewer.scene.kinematics import BatchKinematics


def _package_dir(name: str) -> pathlib.Path:
  """Where a package is installed, without importing it (it imports JAX)."""
  return pathlib.Path(
    importlib.util.find_spec(name).submodule_search_locations[0]
  )


BRAX_ASSETS = _package_dir("brax") / "envs" / "assets"
DMC = _package_dir("mujoco_playground") / "_src" / "dm_control_suite" / "xmls"

BALLS = """
<mujoco model="balls">
  <worldbody>
    <body name="hub" pos="0.2 0.1 1">
      <joint name="swivel" type="ball" pos="0 0 0.1"/>
      <geom type="sphere" size="0.05"/>
      <body name="boom" pos="0 0 -0.3" quat="0.9 0.1 0.3 0.2">
        <joint name="slide" type="slide" axis="1 1 0" ref="0.2"/>
        <joint name="bend" type="hinge" axis="0 1 0" pos="0 0 0.1" ref="0.4"/>
        <geom type="capsule" fromto="0 0 0 0 0 -0.3" size="0.02"/>
      </body>
    </body>
    <body name="target" mocap="true" pos="0.5 0.5 0.5">
      <geom type="box" size="0.05 0.05 0.05"/>
    </body>
    <body name="static" pos="-0.5 0 0.2" euler="0 0 30">
      <geom type="box" size="0.05 0.05 0.05"/>
    </body>
  </worldbody>
</mujoco>
"""


def _chunk(num_steps, num_envs, **poses):
  zeros = np.zeros((num_steps, num_envs), np.float32)
  return FrameChunk(
    seq=0,
    source="train",
    env_steps=0,
    dt=0.05,
    reward=zeros,
    done=zeros,
    truncation=zeros,
    metrics={},
    wall_time=0.0,
    **poses,
  )


@pytest.mark.parametrize(
  "xml", [BRAX_ASSETS / "humanoid.xml", DMC / "fish.xml", BALLS]
)
def test_one_call_for_all_envs_matches_mujoco_per_env_bit_for_bit(xml):
  model = (
    mujoco.MjModel.from_xml_string(xml)
    if isinstance(xml, str)
    else mujoco.MjModel.from_xml_path(str(xml))
  )
  rng = np.random.default_rng(3)
  qpos = model.qpos0 + rng.standard_normal((5, 16, model.nq))
  twin = BatchKinematics(model, 16)
  reference = BatchKinematics(model, 16, use_twin=False)
  assert twin.uses_twin and not reference.uses_twin
  for got, want in zip(twin(qpos), reference(qpos)):
    np.testing.assert_array_equal(got, want)


def test_qpos_chunk_gives_world_poses_with_offsets_for_every_frame():
  model = mujoco.MjModel.from_xml_string(BALLS)
  scene = BatchedScene(model, 6, grid_dims=(3, 2), env_offset=(2.0, 3.0, 0))
  rng = np.random.default_rng(0)
  qpos = (model.qpos0 + 0.5 * rng.standard_normal((4, 6, model.nq))).astype(
    np.float32
  )  # as streamed from JAX
  poses = scene.poses(_chunk(4, 6, qpos=qpos))
  assert poses.xpos.shape == (4, 6, model.nbody, 3)
  assert poses.xquat.shape == (4, 6, model.nbody, 4)
  assert poses.valid.shape == (4, 6) and poses.valid.all()
  data = mujoco.MjData(model)
  for t in range(4):
    for e in range(6):
      data.qpos[:] = qpos[t, e]
      mujoco.mj_kinematics(model, data)
      np.testing.assert_allclose(
        poses.xpos[t, e], data.xpos + scene.offsets[e], atol=1e-12
      )
      np.testing.assert_allclose(poses.xquat[t, e], data.xquat, atol=1e-15)
  # world body and static bodies sit in their env's cell
  np.testing.assert_array_equal(
    poses.xpos[:, :, 0], np.broadcast_to(scene.offsets, (4, 6, 3))
  )
  np.testing.assert_allclose(scene.offsets[4], [2.0, 3.0, 0.0])


def test_link_chunk_gives_the_streamed_link_poses_plus_offsets():
  model = mujoco.MjModel.from_xml_string(BALLS)
  scene = BatchedScene(model, 3, env_offset=(1, 1, 0))
  rng = np.random.default_rng(1)
  pos = rng.standard_normal((7, 3, model.nbody - 1, 3))
  rot = rng.standard_normal((7, 3, model.nbody - 1, 4))
  rot /= np.linalg.norm(rot, axis=-1, keepdims=True)
  poses = scene.poses(_chunk(7, 3, link_pos=pos, link_rot=rot))
  np.testing.assert_array_equal(
    poses.xpos[..., 1:, :], pos + scene.offsets[:, None, :]
  )
  np.testing.assert_array_equal(poses.xquat[..., 1:, :], rot)
  np.testing.assert_array_equal(
    poses.xquat[..., 0, :], np.broadcast_to([1.0, 0, 0, 0], (7, 3, 4))
  )


def test_xmat_is_mujocos_rotation_of_xquat():
  model = mujoco.MjModel.from_xml_string(BALLS)
  scene = BatchedScene(model, 2)
  rng = np.random.default_rng(2)
  poses = scene.poses_from_qpos(
    model.qpos0 + rng.standard_normal((2, model.nq))
  )
  mats = poses.xmat()
  assert mats.shape == (2, model.nbody, 3, 3)
  want = np.zeros(9)
  for e in range(2):
    for b in range(model.nbody):
      mujoco.mju_quat2Mat(want, poses.xquat[e, b])
      np.testing.assert_allclose(mats[e, b].ravel(), want, atol=1e-15)


def test_batched_model_shows_the_same_poses_as_the_pose_engine():
  scene = BatchedScene(str(BRAX_ASSETS / "ant.xml"), 5)
  model = scene.single_model
  rng = np.random.default_rng(4)
  qpos = model.qpos0 + 0.3 * rng.standard_normal((3, 5, model.nq))
  poses = scene.poses_from_qpos(qpos)
  batched = scene.batched_model
  assert batched is scene.batched_model  # built once
  data = mujoco.MjData(batched)
  flat = scene.batched_qpos(qpos)
  assert flat.shape == (3, 5 * model.nq)
  for t in range(3):
    data.qpos[:] = flat[t]
    mujoco.mj_kinematics(batched, data)
    np.testing.assert_allclose(
      data.xpos[1:].reshape(5, -1, 3), poses.xpos[t, :, 1:], atol=1e-12
    )


def test_batched_model_from_an_mjmodel_mujoco_just_loaded():
  # brax and Playground load their env's XML last; the viewer gets an MjModel.
  model = mujoco.MjModel.from_xml_path(str(BRAX_ASSETS / "hopper.xml"))
  scene = BatchedScene(model, 3)
  assert scene.batched_model.nbody == 1 + 3 * (model.nbody - 1)


def test_leading_axes_are_free_and_one_frame_needs_none():
  model = mujoco.MjModel.from_xml_string(BALLS)
  scene = BatchedScene(model, 2)
  one = scene.poses_from_qpos(np.tile(model.qpos0, (2, 1)))
  many = scene.poses_from_qpos(np.tile(model.qpos0, (3, 4, 2, 1)))
  assert one.xpos.shape == (2, model.nbody, 3) and one.valid.shape == (2,)
  assert many.xpos.shape == (3, 4, 2, model.nbody, 3)
  np.testing.assert_array_equal(many.xpos[2, 3], one.xpos)
  np.testing.assert_array_equal(scene.rest_poses().xpos, one.xpos)


def test_poses_plug_straight_into_mjviser():
  viser = pytest.importorskip("viser")
  mjviser = pytest.importorskip("mjviser")
  scene = BatchedScene(str(DMC / "reacher.xml"), 4)  # has a mocap target
  poses = scene.rest_poses()
  with socket.socket() as sock:
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
  server = viser.ViserServer(host="127.0.0.1", port=port, verbose=False)
  try:
    view = mjviser.ViserMujocoScene(
      server, scene.single_model, num_envs=scene.num_envs
    )
    view.camera_tracking_enabled = False
    view.update_from_arrays(
      poses.xpos, poses.xmat(), *scene.mocap_arrays(poses)
    )
    model = scene.single_model
    for group in view._mesh_groups:
      if group.mocap_ids is not None:
        bodies = [
          int(np.flatnonzero(model.body_mocapid == m)[0])
          for m in group.mocap_ids
        ]
      else:
        bodies = list(group.body_ids)
      drawn = np.asarray(group.handle.batched_positions).reshape(4, -1, 3)
      np.testing.assert_allclose(drawn, poses.xpos[:, bodies], atol=1e-5)
  finally:
    server.stop()
