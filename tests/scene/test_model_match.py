"""The N-env model is the model the env simulates: every DM Control Suite env
of MuJoCo Playground, and inline models with what the zoo has (spotlights
aimed at a body, in-memory meshes, models edited in code)."""

from __future__ import annotations

import copy

from meshes import TETRA_OBJ
import mujoco
import numpy as np
import pytest

from braxviewer.scene.batched import BatchedScene, concatenate_envs_xml
from braxviewer.scene.source import source_from_any

registry = pytest.importorskip("mujoco_playground").registry
DMC = tuple(registry.dm_control_suite.ALL_ENVS)
N = 4


def _items(model: mujoco.MjModel, kind: str, body: int) -> np.ndarray:
  return np.flatnonzero(getattr(model, f"{kind}_bodyid") == body)


def _material(model: mujoco.MjModel, ids) -> list:
  """Material names, env prefix left out (-1: "")."""
  return [
    model.mat(int(i)).name.split("/", 1)[-1] if i >= 0 else "" for i in ids
  ]


def assert_copies_match(
  single: mujoco.MjModel,
  batched: mujoco.MjModel,
  atol: float = 0.0,
  n: int = N,
) -> None:
  """Every one of the ``n`` envs' geoms and sites (on bodies) is sized,
  coloured and textured as the single model's."""
  nb = single.nbody - 1
  assert batched.nbody == 1 + n * nb
  for body in range(1, single.nbody):
    for env in range(n):
      other = 1 + env * nb + body - 1
      for kind in ("geom", "site"):
        ours, theirs = _items(single, kind, body), _items(batched, kind, other)
        assert len(ours) == len(theirs)
        for field in ("size", "rgba"):
          np.testing.assert_allclose(
            getattr(batched, f"{kind}_{field}")[theirs],
            getattr(single, f"{kind}_{field}")[ours],
            atol=atol,
            err_msg=f"{kind}_{field} of body {body}, env {env}",
          )
        matid = f"{kind}_matid"
        assert _material(batched, getattr(batched, matid)[theirs]) == (
          _material(single, getattr(single, matid)[ours])
        )


def assert_poses_match(scene: BatchedScene, batched: mujoco.MjModel) -> None:
  """Posing the N-env model puts every body where the single model puts it,
  plus its env's grid offset."""
  single, n = scene.single_model, scene.num_envs
  rng = np.random.default_rng(0)
  qpos = np.tile(single.qpos0, (n, 1)) + 0.2 * rng.standard_normal(
    (n, single.nq)
  )
  data = mujoco.MjData(batched)
  data.qpos[:] = scene.batched_qpos(qpos)
  mujoco.mj_kinematics(batched, data)
  one = mujoco.MjData(single)
  nb = single.nbody - 1
  for env in range(n):
    one.qpos[:] = qpos[env]
    mujoco.mj_kinematics(single, one)
    got = data.xpos[1 + env * nb : 1 + (env + 1) * nb]
    want = one.xpos[1:] + scene.offsets[env]
    assert np.abs(got - want).max() <= 1e-6


@pytest.mark.parametrize("name", DMC)
def test_every_dm_control_env_is_copied_as_it_simulates(name):
  env = registry.load(name)
  for n in (1, 4, 16):
    scene = BatchedScene(env, n)
    assert scene.single_model is env.mj_model  # drawn: the compiled model
    batched = scene.batched_model
    assert_copies_match(env.mj_model, batched, n=n)
    assert_poses_match(scene, batched)
  scene = BatchedScene(env, N)
  text = concatenate_envs_xml(env, N, env_offset=scene.env_offset)
  from_xml = mujoco.MjModel.from_xml_string(text, env.model_assets)
  assert_copies_match(env.mj_model, from_xml, atol=1e-6)


def test_reacher_hard_keeps_its_small_target_which_no_xml_has():
  env = registry.load("ReacherHard")
  target = env.mj_model.geom("target").id
  in_xml = mujoco.MjModel.from_xml_path(env.xml_path, env.model_assets)
  assert in_xml.geom_size[target, 0] != env.mj_model.geom_size[target, 0]
  batched = BatchedScene(env, N).batched_model
  sizes = [batched.geom(f"e{i}/target").size[0] for i in range(N)]
  assert sizes == [env.mj_model.geom_size[target, 0]] * N


def test_an_mjmodel_alone_uses_the_xml_mujoco_loaded_last():
  env = registry.load("CartpoleBalance")  # loads its XML: the last one
  batched = BatchedScene(env.mj_model, N).batched_model
  assert_copies_match(env.mj_model, batched)


def test_an_mjmodel_built_with_mjspec_alone_asks_for_the_env():
  env = registry.load("ReacherEasy")  # compiled from an MjSpec
  mujoco.MjModel.from_xml_string("<mujoco/>")  # MuJoCo's last XML: another
  scene = BatchedScene(env.mj_model, N)
  with pytest.raises(ValueError, match="needs the model's XML.*env itself"):
    _ = scene.batched_model
  assert BatchedScene(env, N).batched_model.nbody == 1 + N * (
    env.mj_model.nbody - 1
  )


# -- inline models -------------------------------------------------------------

SPOTLIT = """
<mujoco>
  <worldbody>
    <light name="sun" pos="0 0 3" dir="0 0 -1"/>
    <light name="spot" mode="targetbodycom" target="torso" pos="0 -1 2"/>
    <geom name="floor" type="plane" size="3 3 0.1"/>
    <body name="torso" pos="0 0 1">
      <freejoint/>
      <geom size="0.1"/>
      <light name="lamp" mode="targetbody" target="leg" pos="0 0 1"/>
      <body name="leg" pos="0 0 -0.3">
        <joint type="hinge"/>
        <geom size="0.05"/>
      </body>
    </body>
  </worldbody>
</mujoco>
"""


def test_a_spotlight_aimed_at_a_body_builds_and_follows_env_0():
  batched = mujoco.MjModel.from_xml_string(concatenate_envs_xml(SPOTLIT, 3))
  names = [batched.light(i).name for i in range(batched.nlight)]
  assert sorted(names) == ["e0/lamp", "e0/spot", "sun"]  # once, not 3 times
  spot = batched.light("e0/spot")
  assert spot.targetbodyid[0] == batched.body("e0/torso").id
  lamp = batched.light("e0/lamp")
  assert lamp.targetbodyid[0] == batched.body("e0/leg").id


MESHY = """
<mujoco>
  <compiler meshdir="meshes"/>
  <asset>
    <mesh name="tetra" file="tetra.obj"/>
    <material name="red" rgba="1 0 0 1"/>
    <material name="blue" rgba="0 0 1 1"/>
  </asset>
  <worldbody>
    <body name="piece" pos="0 0 0.2">
      <joint type="hinge" axis="0 0 1"/>
      <geom name="tetra" type="mesh" mesh="tetra" material="red"/>
      <geom name="ball" size="0.05" pos="0.2 0 0" material="red"/>
    </body>
  </worldbody>
</mujoco>
"""


class PlaygroundLikeEnv:
  """What a MuJoCo Playground env holds: a compiled model, the XML path and
  the files it needs in memory (not on disk)."""

  def __init__(self, xml_path: str, assets: dict, edit=None):
    self.xml_path = xml_path
    self._model_assets = assets
    self.mj_model = mujoco.MjModel.from_xml_path(xml_path, assets)
    if edit is not None:
      edit(self.mj_model)

  @property
  def model_assets(self) -> dict:
    return self._model_assets


def _env(tmp_path, edit=None) -> PlaygroundLikeEnv:
  path = tmp_path / "meshy.xml"
  path.write_text(MESHY)  # meshes/tetra.obj is nowhere on disk
  return PlaygroundLikeEnv(str(path), {"tetra.obj": TETRA_OBJ}, edit)


def test_an_env_with_meshes_in_memory_builds(tmp_path):
  env = _env(tmp_path)
  batched = BatchedScene(env, 3).batched_model
  assert batched.nmesh == 1
  assert (batched.geom_type == mujoco.mjtGeom.mjGEOM_MESH).sum() == 3
  text = concatenate_envs_xml(env, 3)
  reloaded = mujoco.MjModel.from_xml_string(text, env.model_assets)
  assert reloaded.nbody == 1 + 3


def _edit(model: mujoco.MjModel) -> None:
  ball = model.geom("ball").id
  model.geom_size[ball, 0] = 0.11
  model.geom_rgba[ball] = [0, 1, 0, 1]
  model.geom_matid[ball] = model.mat("blue").id
  model.body_pos[model.body("piece").id] = [0.1, 0.2, 0.3]


def test_a_model_edited_after_compiling_is_copied_as_edited(tmp_path):
  env = _env(tmp_path, _edit)
  scene = BatchedScene(env, 3)
  batched = scene.batched_model
  for i in range(3):
    ball = batched.geom(f"e{i}/ball")
    assert ball.size[0] == pytest.approx(0.11)
    assert batched.mat(ball.matid[0]).name.endswith("blue")
    np.testing.assert_allclose(
      batched.body(f"e{i}/piece").pos, [0.1, 0.2, 0.3] + scene.offsets[i]
    )
  xml = concatenate_envs_xml(env, 3)  # the XML carries the edits too
  reloaded = mujoco.MjModel.from_xml_string(xml, env.model_assets)
  ball = reloaded.geom("e2/ball")
  assert ball.size[0] == pytest.approx(0.11)
  assert reloaded.mat(ball.matid[0]).name.endswith("blue")


def test_a_bare_mjmodel_edited_after_loading_is_copied_as_edited():
  model = mujoco.MjModel.from_xml_string(SPOTLIT)
  edited = copy.copy(model)
  edited.geom_size[1, 0] = 0.25
  batched = BatchedScene(edited, 2).batched_model
  sizes = batched.geom_size[batched.geom_bodyid > 0, 0]
  assert list(sizes) == [0.25, 0.05, 0.25, 0.05]


def test_an_mjspec_edited_before_compiling_is_copied_as_compiled(tmp_path):
  path = tmp_path / "meshy.xml"
  path.write_text(MESHY)
  spec = mujoco.MjSpec.from_file(str(path), assets={"tetra.obj": TETRA_OBJ})
  spec.geom("ball").size[0] = 0.02  # as ReacherHard does to its target
  env = PlaygroundLikeEnv(str(path), {"tetra.obj": TETRA_OBJ})
  env.mj_model = spec.compile()
  batched = BatchedScene(env, 2).batched_model
  assert batched.geom("e1/ball").size[0] == pytest.approx(0.02)


def test_an_env_no_xml_matches_is_refused_saying_why(tmp_path):
  env = _env(tmp_path)
  spec = mujoco.MjSpec.from_string(MESHY, assets={"tetra.obj": TETRA_OBJ})
  spec.body("piece").add_geom(size=[0.01, 0, 0])  # not in any XML
  env.mj_model = spec.compile()
  mujoco.MjModel.from_xml_string("<mujoco/>")
  with pytest.raises(ValueError, match="env.xml_path .*another model"):
    source_from_any(env)


# -- recordings keep the compiled model ----------------------------------------


def test_a_recording_keeps_an_edited_env_as_it_simulates(tmp_path):
  from braxviewer.record import model_store

  env = _env(tmp_path, _edit)
  files = model_store.capture(env)
  assert files.xml is not None, files.note
  entry = model_store.write(str(tmp_path / "model"), files)
  drawn = model_store.load(str(tmp_path / "model"), entry)
  portable = mujoco.MjModel.from_xml_string(files.xml, files.assets)
  for model in (drawn, portable):
    ball = model.geom("ball")
    assert ball.size[0] == pytest.approx(0.11)
    assert model.mat(ball.matid[0]).name == "blue"


def test_a_recording_of_an_env_no_xml_matches_keeps_the_mjb(tmp_path):
  from braxviewer.record import model_store

  env = _env(tmp_path)
  spec = mujoco.MjSpec.from_string(MESHY, assets={"tetra.obj": TETRA_OBJ})
  spec.body("piece").add_geom(size=[0.01, 0, 0])
  env.mj_model = spec.compile()
  mujoco.MjModel.from_xml_string("<mujoco/>")
  files = model_store.capture(env)
  assert files.xml is None
  assert "no portable XML" in files.note and "another model" in files.note
  entry = model_store.write(str(tmp_path / "model"), files)
  assert entry["note"] == files.note
  assert model_store.load(str(tmp_path / "model"), entry).ngeom == 3


def test_replay_reads_the_mjb_before_the_xml(tmp_path):
  from braxviewer.record import model_store

  env = _env(tmp_path, _edit)
  entry = model_store.write(str(tmp_path), model_store.capture(env))
  (tmp_path / entry["xml"]).write_text(
    "<mujoco><worldbody><geom size='1'/></worldbody></mujoco>"
  )
  assert model_store.load(str(tmp_path), entry).geom("ball").size[0] == (
    pytest.approx(0.11)
  )
  (tmp_path / entry["mjb"]).write_bytes(b"not an mjb")  # another MuJoCo's
  assert model_store.load(str(tmp_path), entry).ngeom == 1  # the XML


# -- the original API's tiled models -------------------------------------------


def test_a_tiled_env_edited_after_compiling_is_drawn_as_edited():
  from braxviewer.scene import tiled

  text = concatenate_envs_xml(SPOTLIT, 3)
  tiled.remember(SPOTLIT, 3)
  model = mujoco.MjModel.from_xml_string(text)  # the user's env's model
  torso = np.flatnonzero(model.geom_bodyid == model.body("e0/torso").id)[0]
  model.geom_size[torso, 0] = 0.2
  model.geom_rgba[torso] = [0, 1, 0, 1]
  single, copies = tiled.untile(model)
  assert copies == 3 and single.nbody == 3
  ours = np.flatnonzero(single.geom_bodyid == single.body("torso").id)[0]
  assert single.geom_size[ours, 0] == pytest.approx(0.2)
  np.testing.assert_allclose(single.geom_rgba[ours], [0, 1, 0, 1])
