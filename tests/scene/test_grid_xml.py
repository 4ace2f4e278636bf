"""concatenate_envs_xml on small inline models: what is copied per env, what
stays once, and where things end up."""

import os
import pathlib

from meshes import TETRA_OBJ
import mujoco
import numpy as np
import pytest

from braxviewer.scene import grid, grid_xml
from braxviewer.scene.batched import concatenate_envs_xml, grid_offsets
from braxviewer.scene.source import load_source

KITCHEN_SINK = """
<mujoco model="sink">
  <compiler angle="radian"/>
  <option timestep="0.005"/>
  <size memory="1M"/>
  <custom>
    <numeric name="solver_maxls" data="15"/>
    <numeric name="init_qpos" data="0 0 0.5 1 0 0 0 0.1"/>
    <numeric name="per_link" data="1 2 3"/>
    <text name="note" data="hello"/>
  </custom>
  <default>
    <geom rgba="0.2 0.4 0.6 1"/>
    <default class="arm">
      <joint damping="0.7" range="-1 1"/>
      <geom type="capsule" size="0.03"/>
    </default>
  </default>
  <asset>
    <texture name="sky" type="skybox" builtin="gradient" width="32" height="32"/>
    <texture name="checks" type="2d" builtin="checker" width="32" height="32"/>
    <material name="floor_mat" texture="checks"/>
  </asset>
  <worldbody>
    <light name="sun" pos="0 0 3" dir="0 0 -1"/>
    <camera name="overview" pos="0 -3 1" xyaxes="1 0 0 0 0.3 1"/>
    <geom name="floor" type="plane" size="2 2 0.1" material="floor_mat"/>
    <geom name="post" type="box" pos="0.6 0 0.2" size="0.05 0.05 0.2"/>
    <body name="torso" pos="0 0 0.5">
      <freejoint name="root"/>
      <light name="lamp" pos="0 0 0.5" mode="trackcom"/>
      <geom name="torso" type="box" size="0.1 0.1 0.05"/>
      <site name="tip" pos="0.1 0 0"/>
      <body name="arm" pos="0.1 0 0" childclass="arm">
        <joint name="elbow" type="hinge" axis="0 1 0"/>
        <geom name="arm" fromto="0 0 0 0.3 0 0"/>
        <site name="hand" pos="0.3 0 0"/>
      </body>
    </body>
    <body name="target" mocap="true" pos="0.4 0.3 0.1">
      <geom type="sphere" size="0.03" contype="0" conaffinity="0"/>
    </body>
  </worldbody>
  <contact>
    <exclude body1="torso" body2="arm"/>
    <pair geom1="arm" geom2="floor"/>
  </contact>
  <tendon>
    <spatial name="string" range="0 1" limited="true">
      <site site="tip"/>
      <site site="hand"/>
    </spatial>
  </tendon>
  <equality>
    <joint joint1="elbow" polycoef="0 1 0 0 0" active="false"/>
  </equality>
  <actuator>
    <motor name="elbow_motor" joint="elbow" gear="3"/>
  </actuator>
  <sensor>
    <jointpos name="elbow_pos" joint="elbow"/>
    <touch name="hand_touch" site="hand"/>
  </sensor>
  <keyframe>
    <key name="up" qpos="0.1 0.2 0.9 1 0 0 0 0.3" mpos="0.5 0.5 0.2"/>
  </keyframe>
</mujoco>
"""

# A unit tetrahedron in OBJ text, for mesh tests.
MESH_XML = """
<mujoco model="meshy">
  <compiler meshdir="parts" texturedir="parts"/>
  <asset>
    <mesh name="tetra" file="tetra.obj"/>
    <texture name="skin" type="2d" file="skin.png"/>
    <material name="skin" texture="skin"/>
  </asset>
  <worldbody>
    <body name="piece" pos="0 0 0.2">
      <joint type="hinge" axis="0 0 1"/>
      <geom type="mesh" mesh="tetra" material="skin"/>
    </body>
  </worldbody>
</mujoco>
"""


def _png_bytes() -> bytes:
  """A 2x2 PNG written by MuJoCo-independent code (zlib + struct)."""
  import struct
  import zlib

  def chunk(kind, data):
    return (
      struct.pack(">I", len(data))
      + kind
      + data
      + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )

  raw = b"".join(b"\x00" + bytes([255, 0, 0, 0, 255, 0]) for _ in range(2))
  return (
    b"\x89PNG\r\n\x1a\n"
    + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
    + chunk(b"IDAT", zlib.compress(raw))
    + chunk(b"IEND", b"")
  )


def _model(text, assets=None):
  return mujoco.MjModel.from_xml_string(text, assets or {})


def test_free_root_qpos0_and_keyframes_move_to_each_env():
  n = 5
  batched = _model(concatenate_envs_xml(KITCHEN_SINK, n, env_offset=(3, 4, 0)))
  single = _model(KITCHEN_SINK)
  offsets = grid_offsets(n, None, (3, 4, 0))
  qpos0 = batched.qpos0.reshape(n, single.nq)
  np.testing.assert_allclose(qpos0[:, :3], single.qpos0[:3] + offsets)
  np.testing.assert_allclose(qpos0[:, 3:], np.tile(single.qpos0[3:], (n, 1)))
  assert batched.nkey == 1 and batched.key(0).name == "up"
  key = batched.key_qpos[0].reshape(n, single.nq)
  np.testing.assert_allclose(key[:, :3], single.key_qpos[0, :3] + offsets)
  np.testing.assert_allclose(
    key[:, 3:], np.tile(single.key_qpos[0, 3:], (n, 1))
  )
  mpos = batched.key_mpos[0].reshape(n, 3)
  np.testing.assert_allclose(mpos, single.key_mpos[0] + offsets)
  # The keyframe puts every env where the single model's keyframe puts it.
  data, one = mujoco.MjData(batched), mujoco.MjData(single)
  mujoco.mj_resetDataKeyframe(batched, data, 0)
  mujoco.mj_resetDataKeyframe(single, one, 0)
  mujoco.mj_kinematics(batched, data)
  mujoco.mj_kinematics(single, one)
  nb = single.nbody - 1
  for i in range(n):
    np.testing.assert_allclose(
      data.xpos[1 + i * nb : 1 + (i + 1) * nb],
      one.xpos[1:] + offsets[i],
      atol=1e-12,
    )


def test_one_floor_one_skybox_and_world_lights_once_body_lights_in_env_0():
  n = 6
  batched = _model(
    concatenate_envs_xml(
      KITCHEN_SINK, n, grid_dims=(3, 2), env_offset=(3, 4, 0)
    )
  )
  floors = [g for g in range(batched.ngeom) if grid.is_floor(batched, g)]
  assert len(floors) == 1
  floor = floors[0]
  # Centred under the grid (x 0..6, y 0..4) and covering every env's floor.
  np.testing.assert_allclose(batched.geom_pos[floor], [3, 2, 0])
  np.testing.assert_allclose(batched.geom_size[floor, :2], [2 + 3, 2 + 2])
  skyboxes = batched.tex_type == int(mujoco.mjtTexture.mjTEXTURE_SKYBOX)
  assert skyboxes.sum() == 1
  names = [batched.light(i).name for i in range(batched.nlight)]
  assert sorted(names) == ["e0/lamp", "sun"]
  np.testing.assert_allclose(batched.light_pos[names.index("sun")], [3, 2, 3])
  # World geoms other than floors and world cameras are per env.
  for i in range(n):
    assert batched.geom(f"e{i}/post").id >= 0
    assert batched.camera(f"e{i}/overview").id >= 0


def test_per_env_elements_are_copied_and_point_at_their_own_env():
  n = 4
  batched = _model(concatenate_envs_xml(KITCHEN_SINK, n))
  single = _model(KITCHEN_SINK)
  for field in (
    "nu",
    "nsensor",
    "ntendon",
    "neq",
    "nexclude",
    "npair",
    "nsite",
    "ncam",
    "nmocap",
  ):
    assert getattr(batched, field) == n * getattr(single, field), field
  nb = single.nbody - 1
  arm = single.body("arm").id
  for i in range(n):
    # default class values and fromto geometry reach every copy
    elbow = batched.joint(f"e{i}/elbow")
    assert elbow.damping == pytest.approx(0.7)
    np.testing.assert_allclose(elbow.range, [-1, 1])
    geom = batched.geom(f"e{i}/arm")
    np.testing.assert_allclose(geom.size[:2], single.geom("arm").size[:2])
    assert batched.actuator(f"e{i}/elbow_motor").trnid[0] == elbow.id
    np.testing.assert_allclose(batched.actuator(f"e{i}/elbow_motor").gear[0], 3)
    assert batched.sensor(f"e{i}/elbow_pos").objid == elbow.id
    assert batched.tendon(f"e{i}/string").id >= 0
    # the contact pair still meets the one shared floor
    pair = {
      batched.geom(int(batched.pair_geom1[i])).name,
      batched.geom(int(batched.pair_geom2[i])).name,
    }
    assert pair == {f"e{i}/arm", "floor"}
    # the exclude names this env's bodies
    torso = i * nb + single.body("torso").id
    arm_i = i * nb + arm
    assert batched.exclude_signature[i] in (
      (torso << 16) + arm_i,
      (arm_i << 16) + torso,
    )
  assert batched.eq_active0.tolist() == [0] * n


def test_custom_numerics_global_once_per_env_tiled_and_sizes_scaled():
  n = 3
  offsets = grid_offsets(n, None, (2, 2, 0))
  batched = _model(concatenate_envs_xml(KITCHEN_SINK, n, env_offset=(2, 2, 0)))
  names = [batched.numeric(i).name for i in range(batched.nnumeric)]
  assert sorted(names) == ["init_qpos", "per_link", "solver_maxls"]
  assert batched.numeric("solver_maxls").data.tolist() == [15]
  init = batched.numeric("init_qpos").data.reshape(n, 8)
  np.testing.assert_allclose(init[:, :3], [0, 0, 0.5] + offsets)
  np.testing.assert_allclose(init[:, 3:], np.tile([1, 0, 0, 0, 0.1], (n, 1)))
  assert batched.numeric("per_link").data.tolist() == [1, 2, 3] * n
  assert batched.ntext == 1
  spec = mujoco.MjSpec.from_string(concatenate_envs_xml(KITCHEN_SINK, n))
  assert spec.memory == n * 2**20


def test_explicit_statistic_is_widened_to_the_grid():
  xml = KITCHEN_SINK.replace(
    '<size memory="1M"/>', '<statistic center="0 0 0.5" extent="1"/>'
  )
  batched = _model(
    concatenate_envs_xml(xml, 4, grid_dims=(2, 2), env_offset=(2, 2, 0))
  )
  np.testing.assert_allclose(batched.stat.center, [1, 1, 0.5])
  assert batched.stat.extent == pytest.approx(1 + np.sqrt(8) / 2, rel=1e-5)


def test_meshes_and_textures_from_an_assets_dict():
  assets = {"tetra.obj": TETRA_OBJ, "skin.png": _png_bytes()}
  text = concatenate_envs_xml(MESH_XML, 9, assets=assets)
  batched = _model(text, assets)
  assert batched.nmesh == 1 and batched.ntex == 1  # merged, not 9 copies
  mesh_geoms = batched.geom_type == int(mujoco.mjtGeom.mjGEOM_MESH)
  assert mesh_geoms.sum() == 9


def test_meshes_next_to_an_xml_file_load_from_anywhere(tmp_path, monkeypatch):
  (tmp_path / "parts").mkdir()
  (tmp_path / "parts" / "tetra.obj").write_bytes(TETRA_OBJ)
  (tmp_path / "parts" / "skin.png").write_bytes(_png_bytes())
  (tmp_path / "meshy.xml").write_text(MESH_XML)
  by_path = concatenate_envs_xml(str(tmp_path / "meshy.xml"), 4)
  by_dir = concatenate_envs_xml(MESH_XML, 4, model_dir=tmp_path)
  elsewhere = tmp_path / "elsewhere"
  elsewhere.mkdir()
  monkeypatch.chdir(elsewhere)
  for text in (by_path, by_dir):
    batched = _model(text)  # no assets: the XML names absolute directories
    assert batched.nmesh == 1 and batched.nbody == 1 + 4


def test_a_real_mesh_model_shadow_hand():
  path = (
    pathlib.Path(mujoco.__file__).parent
    / "mjx"
    / "test_data"
    / "shadow_hand"
    / "right_hand.xml"
  )
  if not path.exists():
    pytest.skip("mujoco's shadow hand test model is not installed")
  source = load_source(path)
  build = grid_xml.build_batched(source, 4)
  assert build.model.nmesh == source.model.nmesh
  assert build.model.nbody - 1 == 4 * (source.model.nbody - 1)


def test_grid_layout_rules():
  assert grid.resolve_grid_dims(1) == (1, 1, 1)
  assert grid.resolve_grid_dims(7) == (3, 3, 1)
  assert grid.resolve_grid_dims(64) == (8, 8, 1)
  assert grid.resolve_grid_dims(10, (5, 2)) == (5, 2, 1)
  offsets = grid_offsets(12, (2, 3, 2), (1.0, 2.0, 3.0))
  np.testing.assert_allclose(offsets[0], [0, 0, 0])  # env 0 stays put
  np.testing.assert_allclose(offsets[1], [1, 0, 0])  # x fastest
  np.testing.assert_allclose(offsets[2], [0, 2, 0])  # then y
  np.testing.assert_allclose(offsets[6], [0, 0, 3])  # then layers
  np.testing.assert_allclose(offsets[11], [1, 4, 3])
  np.testing.assert_allclose(grid_offsets(3, None, 2.5)[2], [0, 2.5, 0])


def test_default_spacing_gives_tipping_models_square_cells():
  humanoid_like = _model(KITCHEN_SINK)
  spacing = grid.default_env_offset(humanoid_like)
  assert spacing[0] == spacing[1]
  cart = _model("""<mujoco><worldbody>
      <geom name="rail" type="capsule" fromto="-2 0 1 2 0 1" size="0.02"/>
      <body name="cart" pos="0 0 1"><joint type="slide" axis="1 0 0"/>
        <geom type="box" size="0.2 0.1 0.1"/></body></worldbody></mujoco>""")
  spacing = grid.default_env_offset(cart)
  assert spacing[0] > 4 and spacing[1] < 2  # a cart on a rail is not square
  assert np.all(np.round(spacing * 100) == spacing * 100)  # whole cm


def test_grids_with_layers_keep_a_floor_per_env():
  text = concatenate_envs_xml(KITCHEN_SINK, 4, grid_dims=(2, 1, 2))
  batched = _model(text)
  floors = [
    g
    for g in range(batched.ngeom)
    if batched.geom_type[g] == int(mujoco.mjtGeom.mjGEOM_PLANE)
  ]
  assert len(floors) == 4


def test_one_env_grid_is_the_model_itself():
  single = _model(KITCHEN_SINK)
  batched = _model(concatenate_envs_xml(KITCHEN_SINK, 1))
  for field in ("nbody", "nq", "ngeom", "nu", "nsensor", "nkey", "nnumeric"):
    assert getattr(batched, field) == getattr(single, field), field
  np.testing.assert_allclose(batched.qpos0, single.qpos0)
  np.testing.assert_allclose(batched.body_pos, single.body_pos)


def test_xml_paths_may_be_pathlike(tmp_path):
  path = tmp_path / "sink.xml"
  path.write_text(KITCHEN_SINK)
  text = concatenate_envs_xml(path, 2)
  assert _model(text).nbody == 1 + 2 * 3
  assert os.fspath(path) in load_source(path).origin
