"""Body meshes with few triangles, for browsers that render in software.

mjviser's converters tessellate a capsule into ~4,000 triangles; 16 ants are
then ~900k triangles and SwiftShader draws ~2 frames/s. Round primitives
(sphere, capsule, cylinder, ellipsoid) are rebuilt here at ~100-200 triangles
each, in mjviser's colours; boxes, meshes and height fields go through
mjviser unchanged.
"""

from __future__ import annotations

from typing import List

import mujoco
import numpy as np
import trimesh
from mjviser.conversions import create_primitive_mesh, merge_geoms

_G = mujoco.mjtGeom
_ROUND = {int(_G.mjGEOM_SPHERE), int(_G.mjGEOM_CAPSULE),
          int(_G.mjGEOM_CYLINDER), int(_G.mjGEOM_ELLIPSOID)}


def _round_shape(geom_type: int, size: np.ndarray) -> trimesh.Trimesh:
  if geom_type == _G.mjGEOM_SPHERE:
    return trimesh.creation.icosphere(subdivisions=1, radius=size[0])
  if geom_type == _G.mjGEOM_CAPSULE:
    return trimesh.creation.capsule(height=2.0 * size[1], radius=size[0],
                                    count=[12, 8])
  if geom_type == _G.mjGEOM_CYLINDER:
    return trimesh.creation.cylinder(radius=size[0], height=2.0 * size[1],
                                     sections=14)
  mesh = trimesh.creation.icosphere(subdivisions=2, radius=1.0)
  mesh.apply_scale(size)
  return mesh


def _geom_mesh(model: mujoco.MjModel, geom_id: int) -> trimesh.Trimesh:
  """One round geom, low-poly, coloured like mjviser, in body coordinates."""
  rgba = create_primitive_mesh(model, geom_id).visual.vertex_colors[0]
  mesh = _round_shape(int(model.geom_type[geom_id]), model.geom_size[geom_id])
  mesh.visual = trimesh.visual.ColorVisuals(
      vertex_colors=np.tile(rgba, (len(mesh.vertices), 1)))
  rot = np.zeros(9)
  mujoco.mju_quat2Mat(rot, model.geom_quat[geom_id])
  transform = np.eye(4)
  transform[:3, :3] = rot.reshape(3, 3)
  transform[:3, 3] = model.geom_pos[geom_id]
  mesh.apply_transform(transform)
  return mesh


def body_mesh(model: mujoco.MjModel, geom_ids: List[int]) -> trimesh.Trimesh:
  """The geoms ``geom_ids`` of one body merged into one mesh (body frame)."""
  parts = []
  rest = []
  for g in geom_ids:
    untextured = model.geom_matid[g] < 0 or model.mat_texid[
        model.geom_matid[g]].max() < 0
    if int(model.geom_type[g]) in _ROUND and untextured:
      parts.append(_geom_mesh(model, g))
    else:
      rest.append(g)
  if rest:
    parts.append(merge_geoms(model, rest))
  return parts[0] if len(parts) == 1 else trimesh.util.concatenate(parts)
