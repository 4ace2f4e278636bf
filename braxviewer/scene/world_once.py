"""What N copies of a model share in the N-env MJCF, and what each env gets.

The world keeps once what would otherwise come N times: world lights (not
aimed at a body) and the skybox, z-up ground planes on the world body
(moved to the grid centre and enlarged to cover it; not shared when the
grid has several layers), the globals (options, compiler, visual, custom
text and numerics). :func:`parent_spec` is the source with only those, each
env is attached from :func:`child_spec` (its bodies, assets, actuators,
sensors, ...: everything else); the rest here adjusts what stays once to
the whole grid. :mod:`braxviewer.scene.grid_xml` puts them together.
numpy + mujoco only.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import mujoco
import numpy as np

from braxviewer.scene.source import SourceModel

_PLANE = mujoco.mjtGeom.mjGEOM_PLANE
_SKYBOX = mujoco.mjtTexture.mjTEXTURE_SKYBOX
_AIMED = (
  mujoco.mjtCamLight.mjCAMLIGHT_TARGETBODY,
  mujoco.mjtCamLight.mjCAMLIGHT_TARGETBODYCOM,
)


def _is_world_light(light) -> bool:
  """A light the grid shares: on the world body and aimed at no body (a
  spotlight on a robot follows one env's robot: env 0's)."""
  aimed = light.mode in _AIMED and bool(light.targetbody)
  return light.parent.name == "world" and not aimed


def shared_planes(source: SourceModel, grid_dims) -> dict:
  """z-up planes on the world body, shared by all envs: their index in
  ``spec.worldbody.geoms`` -> their compiled rotation matrix."""
  if grid_dims[2] > 1:
    return {}
  shared = {}
  for index, geom in enumerate(source.spec.worldbody.geoms):
    if geom.type != _PLANE or geom.frame is not None or geom.id < 0:
      continue
    rot = np.zeros(9)
    mujoco.mju_quat2Mat(rot, source.model.geom_quat[geom.id])
    if abs(rot[8] - 1.0) < 1e-9:  # plane normal is world +z
      shared[index] = rot.reshape(3, 3)
  return shared


def _widen_planes(planes: Sequence, offsets: np.ndarray) -> None:
  """Move shared planes ``[(geom, rotation)]`` to the grid centre and grow
  them to cover it."""
  lo, hi = offsets.min(0), offsets.max(0)
  centre, half_span = (lo + hi) / 2, (hi - lo) / 2
  for geom, rot in planes:
    geom.pos = np.asarray(geom.pos) + [centre[0], centre[1], 0.0]
    size = np.array(geom.size, dtype=float)
    local = np.abs(rot.T) @ half_span
    for axis in range(2):
      if size[axis] > 0:  # 0 means infinite when drawn
        size[axis] += local[axis]
    geom.size = size


def rename_plane_refs(
  spec: mujoco.MjSpec, names: Sequence[str], num_envs: int
) -> None:
  """Point pairs and sensors at the shared plane instead of ``e{i}/name``."""
  back = {f"e{i}/{n}": n for n in names for i in range(num_envs)}
  if not back:
    return
  for pair in spec.pairs:
    pair.geomname1 = back.get(pair.geomname1, pair.geomname1)
    pair.geomname2 = back.get(pair.geomname2, pair.geomname2)
  for sensor in spec.sensors:
    sensor.objname = back.get(sensor.objname, sensor.objname)
    sensor.refname = back.get(sensor.refname, sensor.refname)


def _centre_lights(spec: mujoco.MjSpec, offsets: np.ndarray) -> None:
  """World lights move to the grid centre."""
  centre = (offsets.min(0) + offsets.max(0)) / 2
  for light in spec.lights:
    if _is_world_light(light):
      light.pos = np.asarray(light.pos) + [centre[0], centre[1], 0.0]


def _widen_statistic(spec: mujoco.MjSpec, offsets: np.ndarray) -> None:
  """Explicit statistic centre/extent cover the whole grid."""
  lo, hi = offsets.min(0), offsets.max(0)
  if not np.isnan(spec.stat.center[0]):
    spec.stat.center = np.asarray(spec.stat.center) + (lo + hi) / 2
  if not np.isnan(spec.stat.extent):
    spec.stat.extent = float(spec.stat.extent + np.linalg.norm(hi - lo) / 2)


def _scale_sizes(spec: mujoco.MjSpec, num_envs: int) -> None:
  """Explicit memory / constraint limits grow with the number of envs."""
  for field in ("memory", "njmax", "nconmax"):
    value = getattr(spec, field)
    if value > 0:
      setattr(spec, field, int(value) * num_envs)


def fit_to_grid(
  spec: mujoco.MjSpec, planes: Sequence, offsets: np.ndarray
) -> None:
  """Stretch what stays once over the grid at ``offsets (N, 3)``: shared
  planes ``[(geom, rotation)]`` (from :func:`parent_spec`) and world lights
  to its centre, the planes grown to cover it, an explicit statistic
  widened to it, explicit memory / constraint limits N times larger."""
  _widen_planes(planes, offsets)
  _centre_lights(spec, offsets)
  _widen_statistic(spec, offsets)
  _scale_sizes(spec, len(offsets))


def parent_spec(source: SourceModel, planes: Mapping[int, np.ndarray]):
  """The source without its per-env content (globals, world lights, shared
  planes), and its shared planes as ``[(geom, rotation)]``."""
  spec = source.spec.copy()
  world = spec.worldbody
  geoms = list(world.geoms)
  kept = [(geoms[i], rot) for i, rot in planes.items()]
  for index, geom in enumerate(geoms):
    if index not in planes:
      spec.delete(geom)
  for frame in list(world.frames):
    spec.delete(frame)
  for body in list(world.bodies):
    spec.delete(body)
  for item in list(world.sites) + list(world.cameras):
    spec.delete(item)
  for light in list(spec.lights):
    if not _is_world_light(light):
      spec.delete(light)
  for group in (
    spec.actuators,
    spec.sensors,
    spec.tendons,
    spec.equalities,
    spec.excludes,
    spec.pairs,
    spec.keys,
    spec.tuples,
    spec.flexes,
    spec.skins,
  ):
    for item in list(group):
      spec.delete(item)
  return spec, kept


def child_spec(
  source: SourceModel, planes: Mapping[int, np.ndarray], keep_body_lights: bool
) -> mujoco.MjSpec:
  """What every env gets: the source without world-once content."""
  spec = source.spec.copy()
  drop = [spec.worldbody.geoms[i] for i in planes]
  for geom in drop:
    spec.delete(geom)
  for light in list(spec.lights):
    if _is_world_light(light) or not keep_body_lights:
      spec.delete(light)
  for group in (spec.keys, spec.numerics, spec.texts):
    for item in list(group):
      spec.delete(item)
  for texture in list(spec.textures):
    if texture.type == _SKYBOX:
      spec.delete(texture)
  return spec
