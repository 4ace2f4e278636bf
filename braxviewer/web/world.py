"""The static world drawn once: geoms shared by every env (a terrain, a
heightfield, stairs; in overlay every geom welded to the world).

Which bodies are shared is :func:`braxviewer.scene.layout.shared_bodies`; their
parts are taken out of the per-env shapes (:func:`split`) and put in the
scene here, once, at their rest pose: they never move.
"""

from __future__ import annotations

import dataclasses
from typing import List, Tuple

import numpy as np
import viser

from braxviewer.web import detail
from braxviewer.web.primitives import Parts, Shape

# Shapes with more parts than this are drawn one level coarser than the
# finest (a terrain of many round stones).
_MANY_PARTS = 32


def _take(shape: Shape, keep: np.ndarray) -> Shape:
  """``shape`` with only the parts where ``keep`` is True (every per-part
  array is cut, whatever fields a Shape has)."""
  cut = {
    f.name: getattr(shape, f.name)[keep]
    for f in dataclasses.fields(shape)
    if isinstance(getattr(shape, f.name), np.ndarray)
    and len(getattr(shape, f.name)) == shape.num_parts
  }
  return dataclasses.replace(shape, **cut)


def split(
  shapes: List[Shape], shared: np.ndarray
) -> Tuple[List[Shape], List[Shape]]:
  """``(per_env, once)``: the parts of ``shapes`` on bodies not ``shared``
  (drawn per env) and on ``shared`` bodies (``(nbody,)`` mask, drawn
  once); shapes left without parts are dropped."""
  per_env, once = [], []
  for shape in shapes:
    mask = np.asarray(shared)[shape.body]
    if not mask.any():
      per_env.append(shape)
    elif mask.all():
      once.append(shape)
    else:
      per_env.append(_take(shape, ~mask))
      once.append(_take(shape, mask))
  return per_env, once


class StaticWorld:
  """Shapes drawn once, at body poses ``xpos (nbody, 3)``, ``xquat (nbody,
  4)`` (the rest pose: these bodies are welded to the world).

  Args:
    server: the viser server.
    root: scene path to draw under (the envs' frame: follow moves it too).
    parts: the model's parts (for posing).
    shapes: the shapes to draw once (from :func:`split`).
  """

  def __init__(
    self,
    server: viser.ViserServer,
    root: str,
    parts: Parts,
    shapes: List[Shape],
    xpos: np.ndarray,
    xquat: np.ndarray,
  ):
    self.shapes = shapes
    self._handles = []
    self.triangles = 0  # of the unit shapes (meshes drawn as they are)
    for i, shape in enumerate(shapes):
      pos, quat = parts.poses(shape, xpos[None], xquat[None])
      name = f"{root}/{i}_{shape.kind.replace(':', '_')}"
      if shape.mesh is not None:
        self._handles.append(
          server.scene.add_batched_meshes_trimesh(
            name,
            shape.mesh,
            batched_wxyzs=quat,
            batched_positions=pos,
            batched_scales=shape.scale,
            lod="off",
          )
        )
        continue
      meshes = list(detail.levels(shape.kind))
      many = shape.num_parts > _MANY_PARTS and len(meshes) > 1
      level = meshes[-2] if many else meshes[-1]
      opaque = bool(np.all(shape.opacity >= 1))
      self._handles.append(
        server.scene.add_batched_meshes_simple(
          name,
          np.asarray(level.mesh.vertices, np.float32),
          np.asarray(level.mesh.faces, np.uint32),
          batched_wxyzs=quat,
          batched_positions=pos,
          batched_scales=shape.scale,
          batched_colors=shape.rgb,
          batched_opacities=None if opaque else shape.opacity,
          lod="off",
        )
      )
      self.triangles += level.triangles * shape.num_parts

  def set_visible(self, category: str, visible: bool) -> None:
    """Draw or hide the world's parts of a category (e.g. its sites)."""
    for shape, handle in zip(self.shapes, self._handles):
      if shape.category == category:
        handle.visible = visible

  def remove(self) -> None:
    """Take the world out of the scene."""
    for handle in self._handles:
      handle.remove()
    self._handles = []
