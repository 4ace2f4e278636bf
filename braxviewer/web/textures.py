"""Textured primitives (boxes, spheres, ...) as meshes, mapped as MuJoCo maps
them.

MuJoCo has no texture coordinates on its built-in shapes: a 2D texture is
projected along the shape's z axis onto its x-y extent (``texrepeat`` copies
across the shape, or per metre with ``texuniform``), so the sides of a box
get the edge texels stretched. A cube texture is looked up by direction from
the shape's centre; here each face gets the mean colour of the cube side it
faces (enough for MuJoCo's usual flat-with-noise cube textures). Either way
the colour is multiplied by the object's rgba. Pure numpy + trimesh + PIL.
"""

from __future__ import annotations

from typing import Optional

import mujoco
import numpy as np
from PIL import Image
import trimesh
import trimesh.visual
import trimesh.visual.material

from braxviewer.web import detail

_G = mujoco.mjtGeom
_RGB = int(mujoco.mjtTextureRole.mjTEXROLE_RGB)
_RGBA = int(mujoco.mjtTextureRole.mjTEXROLE_RGBA)
_TEX_2D = int(mujoco.mjtTexture.mjTEXTURE_2D)


def texture_of(model: mujoco.MjModel, matid: int) -> int:
  """The colour texture of material ``matid`` (-1: none)."""
  if not 0 <= matid < model.nmat:
    return -1
  texid = int(model.mat_texid[matid, _RGB])
  return texid if texid >= 0 else int(model.mat_texid[matid, _RGBA])


def _texels(model: mujoco.MjModel, texid: int) -> np.ndarray:
  """``(height, width, channels)`` uint8, MuJoCo's row order (bottom first)."""
  w, h = int(model.tex_width[texid]), int(model.tex_height[texid])
  nc = int(model.tex_nchannel[texid])
  adr = int(model.tex_adr[texid])
  return np.asarray(model.tex_data[adr : adr + w * h * nc]).reshape(h, w, nc)


def _unit_shape(gtype: int, size: np.ndarray) -> trimesh.Trimesh:
  """The finest unit shape of ``gtype`` (MuJoCo's sizes are its scales),
  one vertex per face corner."""
  if gtype in (_G.mjGEOM_SPHERE, _G.mjGEOM_ELLIPSOID):
    mesh = detail.levels("sphere")[-1].mesh
  elif gtype == _G.mjGEOM_CYLINDER:
    mesh = detail.levels("cylinder")[-1].mesh
  elif gtype == _G.mjGEOM_CAPSULE:
    half = size[1] / max(size[0], 1e-9)
    mesh = detail.capsule(half, 20, 5)
  else:  # boxes, and planes drawn as thin boxes
    mesh = trimesh.creation.box(extents=(2.0, 2.0, 2.0))
  mesh = mesh.copy()
  mesh.unmerge_vertices()
  return mesh


def _scales(gtype: int, size: np.ndarray) -> np.ndarray:
  """Per-axis scale of the unit shape for MuJoCo's ``size``."""
  if gtype == _G.mjGEOM_SPHERE:
    return size[[0, 0, 0]]
  if gtype in (_G.mjGEOM_CYLINDER,):
    return size[[0, 0, 1]]
  if gtype == _G.mjGEOM_CAPSULE:
    return size[[0, 0, 0]]
  return size[:3]


def textured_primitive(
  model: mujoco.MjModel,
  gtype: int,
  size: np.ndarray,
  matid: int,
  rgba: np.ndarray,
) -> Optional[trimesh.Trimesh]:
  """A mesh of the primitive ``gtype`` of MuJoCo ``size`` (a plane: the
  thin box ``(x, y, thickness)`` it is drawn as) in its own frame, with
  material ``matid``'s texture and colour ``rgba``; None when the material
  has no texture."""
  texid = texture_of(model, matid)
  if texid < 0:
    return None
  size = np.asarray(size, dtype=np.float64)
  unit = _unit_shape(gtype, size)
  scale = _scales(gtype, size)
  local = np.asarray(unit.vertices) * scale
  mesh = trimesh.Trimesh(local, np.asarray(unit.faces), process=False)
  uniform = bool(model.mat_texuniform[matid])
  repeat = np.asarray(model.mat_texrepeat[matid], dtype=np.float64)
  texels = _texels(model, texid)
  colour = np.clip(np.asarray(rgba, dtype=np.float64), 0.0, 1.0)
  if int(model.tex_type[texid]) == _TEX_2D:
    # s = (repeat_x x / 2 - 1/2), t = -(repeat_y y / 2 + 1/2), x and y in
    # the unit shape's frame (in metres for texuniform)
    extent = scale[:2] if uniform else np.ones(2)
    unit_xy = np.asarray(unit.vertices)[:, :2]
    s = 0.5 * repeat[0] * extent[0] * unit_xy[:, 0] - 0.5
    t = -0.5 * repeat[1] * extent[1] * unit_xy[:, 1] - 0.5
    image = Image.fromarray(np.ascontiguousarray(texels[::-1]).squeeze())
    material = trimesh.visual.material.PBRMaterial(
      baseColorFactor=colour,
      baseColorTexture=image,
      metallicFactor=0.0,
      roughnessFactor=1.0,
    )
    mesh.visual = trimesh.visual.TextureVisuals(
      uv=np.stack([s, t], axis=1), material=material
    )
    return mesh
  # cube (or skybox): each face the mean colour of the cube side it faces
  side = texels.shape[1]
  faces = texels[: 6 * side].reshape(6, side, side, -1)[..., :3]
  means = faces.reshape(6, -1, 3).mean(axis=1) / 255.0
  lookup = np.asarray(unit.triangles_center) * (scale if uniform else 1.0)
  axis = np.abs(lookup).argmax(axis=1)
  sign = np.take_along_axis(lookup, axis[:, None], 1)[:, 0] < 0
  face_rgb = means[2 * axis + sign] * colour[:3]
  rgba8 = np.round(
    np.c_[face_rgb, np.full(len(face_rgb), colour[3])] * 255
  ).astype(np.uint8)
  mesh.visual = trimesh.visual.ColorVisuals(
    mesh, vertex_colors=np.repeat(rgba8, 3, axis=0)
  )
  return mesh
