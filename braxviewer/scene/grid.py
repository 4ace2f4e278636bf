"""Grid layout of N env copies: dimensions, spacing and per-env offsets.

Env ``i`` sits in column ``i % nx``, row ``(i // nx) % ny`` and layer
``i // (nx * ny)``; its offset is ``(col * dx, row * dy, layer * dz)``, so env 0
stays at the origin, where the single model was authored. When no spacing is
given it is derived from the model's size at ``qpos0`` (see
:func:`default_env_offset`).

What counts as the env's size: geoms on bodies welded to the world (terrain,
walls, an arena) are the *static world*; the others are the *robot*. A
mobile robot (a free root) on a static world much larger than itself
(:func:`has_terrain`: a heightfield, stairs, a big box) roams that world, so
its cells are sized to the robot alone; a fixed-base env keeps its arena in
its cell. numpy + mujoco only.
"""

from __future__ import annotations

import math
import numbers
from typing import Optional, Sequence, Tuple

import mujoco
import numpy as np

GridDims = Tuple[int, int, int]

_PLANE = int(mujoco.mjtGeom.mjGEOM_PLANE)
_HFIELD = int(mujoco.mjtGeom.mjGEOM_HFIELD)
_SLIDE = int(mujoco.mjtJoint.mjJNT_SLIDE)
_FREE = int(mujoco.mjtJoint.mjJNT_FREE)
# A static world this many times the robot's size is terrain it roams, not
# an arena that belongs in its cell.
TERRAIN_RATIO = 4.0
# Free space around each env, as a fraction of its largest horizontal size.
_MARGIN = 0.25
# Smallest cell edge (m): keeps tiny or geometry-free models apart.
_MIN_CELL = 0.1


def check_num_envs(num_envs) -> int:
  """``num_envs`` as an int >= 1, or a ValueError saying what was wrong."""
  if isinstance(num_envs, bool) or not isinstance(num_envs, numbers.Integral):
    raise ValueError(
      f"num_envs must be a whole number >= 1, got {num_envs!r}"
      f" ({type(num_envs).__name__})."
    )
  if num_envs < 1:
    raise ValueError(
      f"num_envs must be at least 1, got {num_envs}: ask for one env or more."
    )
  return int(num_envs)


def resolve_grid_dims(
  num_envs: int, grid_dims: Optional[Sequence[int]] = None
) -> GridDims:
  """``(nx, ny, nz)`` holding ``num_envs`` envs.

  Args:
    num_envs: number of envs, >= 1.
    grid_dims: ``(nx, ny)`` or ``(nx, ny, nz)`` whose product covers
      ``num_envs``; None picks a near-square ``x, y`` grid with one layer.

  Raises:
    ValueError: for entries that are not whole numbers >= 1, or a grid too
      small for ``num_envs``.
  """
  num_envs = check_num_envs(num_envs)
  if grid_dims is None:
    nx = math.ceil(math.sqrt(num_envs))
    return nx, math.ceil(num_envs / nx), 1
  dims = tuple(grid_dims)
  if len(dims) == 2:
    dims = dims + (1,)
  if len(dims) != 3 or not all(
    isinstance(d, numbers.Integral) and not isinstance(d, bool) and d >= 1
    for d in dims
  ):
    raise ValueError(
      f"grid_dims must be (nx, ny) or (nx, ny, nz) of whole numbers >= 1,"
      f" got {tuple(grid_dims)!r}."
    )
  dims = tuple(int(d) for d in dims)
  if dims[0] * dims[1] * dims[2] < num_envs:
    nx = math.ceil(math.sqrt(num_envs))
    raise ValueError(
      f"grid_dims {dims} holds {dims[0] * dims[1] * dims[2]} envs but"
      f" num_envs is {num_envs}: give grid_dims whose product is at least"
      f" {num_envs} (e.g. {(nx, math.ceil(num_envs / nx), 1)}) or leave it"
      " None for a near-square grid."
    )
  return dims  # type: ignore[return-value]


def check_env_offset(env_offset) -> np.ndarray:
  """Spacing ``(dx, dy, dz)`` from 3 numbers, 2 numbers (dz = 0) or 1 number
  (the same spacing on every axis)."""
  if isinstance(env_offset, numbers.Real) and not isinstance(env_offset, bool):
    values = [float(env_offset)] * 3
  else:
    try:
      values = [float(v) for v in env_offset]
    except (TypeError, ValueError):
      raise ValueError(
        f"env_offset must be (dx, dy, dz) in metres, got {env_offset!r}."
      ) from None
    if len(values) == 2:
      values.append(0.0)
  offset = np.asarray(values, dtype=np.float64)
  if offset.shape != (3,) or not np.all(np.isfinite(offset)):
    raise ValueError(
      f"env_offset must be 3 finite numbers (dx, dy, dz) in metres, got"
      f" {env_offset!r}."
    )
  return offset


def grid_offsets(
  num_envs: int, grid_dims: Optional[Sequence[int]] = None, env_offset=None
) -> np.ndarray:
  """``(num_envs, 3)`` world offset of every env copy.

  Args:
    num_envs: number of envs, >= 1.
    grid_dims: ``(nx, ny[, nz])``; None: near-square in ``x, y``.
    env_offset: spacing ``(dx, dy, dz)`` between neighbouring cells (m).
      Required here: :func:`default_env_offset` derives one from a model.
  """
  dims = resolve_grid_dims(num_envs, grid_dims)
  if env_offset is None:
    raise ValueError(
      "grid_offsets needs env_offset (dx, dy, dz); derive one from the model"
      " with default_env_offset(model)."
    )
  spacing = check_env_offset(env_offset)
  i = np.arange(num_envs)
  nx, ny, _ = dims
  cells = np.stack([i % nx, (i // nx) % ny, i // (nx * ny)], axis=1)
  return cells * spacing


def is_floor(model: mujoco.MjModel, geom: int) -> bool:
  """A ground plane: a plane on the world body facing +z (shared by all envs
  of a grid, left out of the model's size)."""
  if model.geom_type[geom] != _PLANE or model.geom_bodyid[geom] != 0:
    return False
  rot = np.zeros(9)
  mujoco.mju_quat2Mat(rot, model.geom_quat[geom])
  return abs(rot[8] - 1.0) < 1e-9


def geom_boxes(
  model: mujoco.MjModel,
  data: mujoco.MjData,
  geoms: Optional[Sequence[int]] = None,
) -> np.ndarray:
  """``(G, 2, 3)`` world axis-aligned boxes (min, max) of ``geoms``, posed by
  ``data`` (after mj_kinematics).

  By default every geom but floors (:func:`is_floor`) and infinite planes;
  a finite plane (a wall) counts as its drawn rectangle.
  """
  if geoms is None:
    geoms = [g for g in range(model.ngeom) if not is_floor(model, g)]
  planes = model.geom_type == _PLANE
  ids = np.asarray(
    [g for g in geoms if not planes[g] or np.all(model.geom_size[g, :2] > 0)],
    dtype=int,
  )
  if ids.size == 0:
    return np.zeros((0, 2, 3))
  centre = model.geom_aabb[ids, :3].copy()  # local box: centre, half sizes
  half = model.geom_aabb[ids, 3:].copy()
  flat = planes[ids]
  centre[flat] = 0.0
  half[flat] = np.c_[model.geom_size[ids[flat], :2], np.zeros(flat.sum())]
  rot = data.geom_xmat[ids].reshape(-1, 3, 3)
  world_centre = data.geom_xpos[ids] + np.einsum("gij,gj->gi", rot, centre)
  world_half = np.einsum("gij,gj->gi", np.abs(rot), half)
  return np.stack([world_centre - world_half, world_centre + world_half], 1)


def model_extent(model: mujoco.MjModel) -> Optional[np.ndarray]:
  """``(2, 3)`` box (min, max) around the model's geoms at ``qpos0``, floors
  left out; None when there are none."""
  data = mujoco.MjData(model)
  mujoco.mj_kinematics(model, data)
  boxes = geom_boxes(model, data)
  if len(boxes) == 0:
    return None
  return np.stack([boxes[:, 0].min(0), boxes[:, 1].max(0)])


def static_geoms(model: mujoco.MjModel) -> np.ndarray:
  """``(ngeom,)`` True for geoms on bodies welded to the world (they never
  move: floors, terrain, walls, an arena); the rest are the robot's."""
  return np.asarray(model.body_weldid[model.geom_bodyid] == 0)


def _box(model: mujoco.MjModel, geoms: np.ndarray) -> Optional[np.ndarray]:
  """``(2, 3)`` box around ``geoms`` (a mask) at ``qpos0``, floors left out;
  None when there are none."""
  data = mujoco.MjData(model)
  mujoco.mj_kinematics(model, data)
  ids = [int(g) for g in np.flatnonzero(geoms) if not is_floor(model, int(g))]
  boxes = geom_boxes(model, data, ids)
  if len(boxes) == 0:
    return None
  return np.stack([boxes[:, 0].min(0), boxes[:, 1].max(0)])


def robot_extent(model: mujoco.MjModel) -> Optional[np.ndarray]:
  """``(2, 3)`` box around the robot's geoms (bodies not welded to the
  world) at ``qpos0``; None when nothing moves."""
  return _box(model, ~static_geoms(model))


def is_mobile(model: mujoco.MjModel) -> bool:
  """Whether a root body (child of the world) has a free joint: a mobile
  base (quadrupeds, humanoids, a free object), which roams its world."""
  roots = model.body_parentid[model.jnt_bodyid] == 0
  return bool(np.any(roots & (model.jnt_type == _FREE)))


def has_terrain(model: mujoco.MjModel) -> bool:
  """Whether a mobile robot (:func:`is_mobile`) roams a static world: a
  heightfield, or static geoms (floors left out) spanning over
  :data:`TERRAIN_RATIO` times the robot's largest size horizontally.

  Such a world is not part of the env's grid cell: every env is simulated
  on the same world, and the world is drawn once."""
  if not is_mobile(model):
    return False
  static = static_geoms(model)
  if np.any(static & (model.geom_type == _HFIELD)):
    return True
  world, robot = _box(model, static), robot_extent(model)
  if world is None or robot is None:
    return False
  world_size = float((world[1] - world[0])[:2].max())
  return world_size > TERRAIN_RATIO * float((robot[1] - robot[0]).max())


def can_tip_over(model: mujoco.MjModel) -> bool:
  """Whether a root body (child of the world) can rotate: free, ball or
  hinge joint on it (humanoids, walkers, cheetahs, pendulums)."""
  roots = model.body_parentid[model.jnt_bodyid] == 0
  return bool(np.any(roots & (model.jnt_type != _SLIDE)))


def default_env_offset(model: mujoco.MjModel) -> np.ndarray:
  """Spacing ``(dx, dy, dz)`` that keeps copies of ``model`` apart.

  Each axis gets the model's size at ``qpos0`` (floors left out) plus a
  margin of a quarter of its largest horizontal size; a mobile robot on
  terrain (:func:`has_terrain`) counts its own size only, the terrain is
  shared. A model whose root can rotate (:func:`can_tip_over`) gets square
  cells as wide as its largest size on any axis, so a fallen humanoid or
  walker still fits its cell. Values are rounded up to whole centimetres.
  """
  extent = robot_extent(model) if has_terrain(model) else model_extent(model)
  if extent is None:
    size = np.full(3, float(max(model.stat.extent, _MIN_CELL)))
  else:
    size = extent[1] - extent[0]
  if can_tip_over(model):
    size[:2] = size.max()
  margin = _MARGIN * float(size[:2].max())
  # Whole centimetres: offsets stay exact in the MJCF MuJoCo writes.
  return np.maximum(np.ceil((size + margin) * 100.0 - 1e-6) / 100.0, _MIN_CELL)


def is_env_major(
  single: mujoco.MjModel, batched: mujoco.MjModel, num_envs: int
) -> bool:
  """Whether ``batched`` holds ``num_envs`` copies of ``single``'s bodies and
  joints, env ``i`` being the i-th contiguous block (after the world body) of
  bodies, joints and ``qpos``."""
  nb, nq, nj = single.nbody - 1, single.nq, single.njnt
  if (
    batched.nbody != 1 + num_envs * nb
    or batched.nq != num_envs * nq
    or batched.njnt != num_envs * nj
  ):
    return False
  envs = np.arange(num_envs)[:, None]
  if nj:
    want = (envs * nq + single.jnt_qposadr).ravel()
    if not np.array_equal(batched.jnt_qposadr, want):
      return False
    want = (envs * nb + single.jnt_bodyid).ravel()
    if not np.array_equal(batched.jnt_bodyid, want):
      return False
  if nb:
    parents = single.body_parentid[1:][None, :]
    want = np.where(parents == 0, 0, parents + nb * envs).ravel()
    if not np.array_equal(batched.body_parentid[1:], want):
      return False
  return True
