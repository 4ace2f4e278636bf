"""Every XML brax ships and the DM Control Suite XMLs of MuJoCo Playground, at
N = 1, 7 and 64: the grid compiles with N times the bodies, copies do not
overlap, and its kinematics is the single model's plus the grid offset."""

import functools
import importlib.util
import pathlib
import warnings

import mujoco
import numpy as np
import pytest

from braxviewer.scene import grid, grid_xml, source
from braxviewer.scene.batched import BatchedScene


def _package_dir(name: str) -> pathlib.Path:
  """Where a package is installed, without importing it (brax and Playground
  import JAX)."""
  return pathlib.Path(
    importlib.util.find_spec(name).submodule_search_locations[0]
  )


BRAX_XMLS = sorted((_package_dir("brax") / "envs" / "assets").glob("*.xml"))
DMC_DIR = (
  _package_dir("mujoco_playground") / "_src" / "dm_control_suite" / "xmls"
)
DMC_XMLS = sorted(DMC_DIR.glob("*.xml"))
MODELS = BRAX_XMLS + DMC_XMLS
NUM_ENVS = (1, 7, 64)

_FREE = int(mujoco.mjtJoint.mjJNT_FREE)
_BALL = int(mujoco.mjtJoint.mjJNT_BALL)


def _id(path: pathlib.Path) -> str:
  return ("brax/" if path in BRAX_XMLS else "dmc/") + path.stem


def test_the_model_lists_are_complete():
  names = {p.stem for p in BRAX_XMLS}
  assert {
    "ant",
    "half_cheetah",
    "hopper",
    "humanoid",
    "humanoidstandup",
    "inverted_double_pendulum",
    "inverted_pendulum",
    "pusher",
    "reacher",
    "swimmer",
    "walker2d",
  } <= names
  assert len(DMC_XMLS) >= 5


@functools.lru_cache(maxsize=None)
def _source(path: pathlib.Path) -> source.SourceModel:
  with warnings.catch_warnings():  # MuJoCo 4 deprecation notes on old XMLs
    warnings.simplefilter("ignore")
    return source.load_source(path)


def _build(path, num_envs) -> grid_xml.BatchedBuild:
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    return grid_xml.build_batched(_source(path), num_envs)


def random_qpos(model: mujoco.MjModel, num: int, seed: int) -> np.ndarray:
  """Valid random qpos: joint ranges respected, unit quaternions."""
  rng = np.random.default_rng(seed)
  qpos = np.tile(model.qpos0, (num, 1))
  for j in range(model.njnt):
    adr, kind = model.jnt_qposadr[j], model.jnt_type[j]
    if kind == _FREE:
      qpos[:, adr : adr + 3] += rng.uniform(-1, 1, (num, 3))
      quat = rng.normal(size=(num, 4))
      qpos[:, adr + 3 : adr + 7] = quat / np.linalg.norm(
        quat, axis=1, keepdims=True
      )
    elif kind == _BALL:
      quat = rng.normal(size=(num, 4))
      qpos[:, adr : adr + 4] = quat / np.linalg.norm(
        quat, axis=1, keepdims=True
      )
    elif model.jnt_limited[j]:
      lo, hi = model.jnt_range[j]
      qpos[:, adr] = rng.uniform(lo, hi, num)
    else:
      qpos[:, adr] += rng.uniform(-np.pi, np.pi, num)
  return qpos


def _env_geoms(single, batched, num_envs):
  """Per env, its geoms in the batched model, in the single model's order
  (floors excluded): geoms of its bodies, then its world geoms by name."""
  nb = single.nbody - 1
  single_world = [
    g
    for g in range(single.ngeom)
    if single.geom_bodyid[g] == 0 and not grid.is_floor(single, g)
  ]
  single_body = [g for g in range(single.ngeom) if single.geom_bodyid[g] > 0]
  out = []
  for i in range(num_envs):
    lo, hi = 1 + i * nb, 1 + (i + 1) * nb
    body = [
      g for g in range(batched.ngeom) if lo <= batched.geom_bodyid[g] < hi
    ]
    world = []
    for g in single_world:
      name = single.geom(g).name
      assert name, "test models name their world geoms"
      world.append(batched.geom(f"e{i}/{name}").id)
    assert len(body) == len(single_body)
    out.append((body + world, single_body + single_world))
  return out


@pytest.mark.parametrize("num_envs", NUM_ENVS)
@pytest.mark.parametrize("path", MODELS, ids=_id)
def test_grid_has_n_copies_apart_with_exact_kinematics(path, num_envs):
  single = _source(path).model
  build = _build(path, num_envs)
  batched = build.model
  n = num_envs

  # N times every per-env element; world-once things once.
  assert batched.nbody - 1 == n * (single.nbody - 1)
  for field in (
    "nq",
    "nv",
    "njnt",
    "nu",
    "ntendon",
    "neq",
    "nsensor",
    "ncam",
    "nmocap",
    "nexclude",
    "npair",
  ):
    assert getattr(batched, field) == n * getattr(single, field), field
  assert batched.nkey == single.nkey
  floors = sum(grid.is_floor(single, g) for g in range(single.ngeom))
  assert sum(grid.is_floor(batched, g) for g in range(batched.ngeom)) == floors
  assert batched.nlight <= single.nlight

  # Copies do not overlap at rest (boxes of each env's geoms, floors out).
  envs = _env_geoms(single, batched, n)
  data = mujoco.MjData(batched)
  mujoco.mj_kinematics(batched, data)
  boxes = np.array(
    [
      [b[:, 0].min(0), b[:, 1].max(0)]
      for b in (grid.geom_boxes(batched, data, geoms) for geoms, _ in envs)
    ]
  )
  lo, hi = boxes[:, 0], boxes[:, 1]
  apart = (lo[:, None] >= hi[None, :] - 1e-9) | (
    lo[None, :] >= hi[:, None] - 1e-9
  )
  touching = ~apart.any(-1)
  np.fill_diagonal(touching, False)
  assert not touching.any(), np.argwhere(touching)[:4]

  # Random valid poses: batched kinematics == single + offset.
  qpos = random_qpos(single, n, seed=n)
  shifts = grid_xml.qpos_shifts(single, build.offsets)
  data.qpos[:] = (qpos + shifts).ravel()
  mujoco.mj_kinematics(batched, data)
  one = mujoco.MjData(single)
  nb = single.nbody - 1
  want_xpos = np.empty((n, single.nbody, 3))
  for i in range(n):
    one.qpos[:] = qpos[i]
    mujoco.mj_kinematics(single, one)
    want_xpos[i] = one.xpos + build.offsets[i]
    block = slice(1 + i * nb, 1 + (i + 1) * nb)
    np.testing.assert_allclose(
      data.xpos[block], want_xpos[i, 1:], rtol=0, atol=1e-9
    )
    np.testing.assert_allclose(
      data.xquat[block], one.xquat[1:], rtol=0, atol=1e-12
    )
    mine, theirs = envs[i]
    np.testing.assert_allclose(
      data.geom_xpos[mine],
      one.geom_xpos[theirs] + build.offsets[i],
      rtol=0,
      atol=1e-9,
    )
    np.testing.assert_allclose(
      data.geom_xmat[mine], one.geom_xmat[theirs], rtol=0, atol=1e-12
    )

  # The pose engine gives the same poses, from the single model alone.
  scene = BatchedScene(single, n)
  np.testing.assert_array_equal(scene.offsets, build.offsets)
  poses = scene.poses_from_qpos(qpos)
  np.testing.assert_allclose(poses.xpos, want_xpos, rtol=0, atol=1e-9)
  assert poses.valid.all()


@pytest.mark.parametrize("path", MODELS, ids=_id)
def test_concatenated_xml_loads_in_mujoco_as_built(path):
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    if path in DMC_XMLS:
      # As Playground loads them: XML text + dm_control_suite.common's
      # get_assets() (every file of xmls/common by name).
      assets = {
        f.name: f.read_bytes()
        for f in (DMC_DIR / "common").iterdir()
        if f.is_file()
      }
      text = grid_xml.concatenate_envs_xml(path.read_text(), 7, assets=assets)
    else:
      assets = {}
      text = grid_xml.concatenate_envs_xml(str(path), 7)
    loaded = mujoco.MjModel.from_xml_string(text, assets)
  built = _build(path, 7).model
  for field in (
    "nbody",
    "nq",
    "nv",
    "ngeom",
    "nu",
    "nsensor",
    "ntendon",
    "neq",
    "nkey",
    "nlight",
    "ncam",
    "nmat",
    "ntex",
  ):
    assert getattr(loaded, field) == getattr(built, field), field
  # MuJoCo writes MJCF numbers with 6 significant digits (and only the size
  # entries a geom type uses: compare its derived bounding box instead).
  for field in (
    "body_pos",
    "body_quat",
    "geom_aabb",
    "geom_pos",
    "jnt_range",
    "qpos0",
    "actuator_gear",
    "key_qpos",
  ):
    np.testing.assert_allclose(
      getattr(loaded, field),
      getattr(built, field),
      rtol=1e-5,
      atol=1e-5,
      err_msg=field,
    )
