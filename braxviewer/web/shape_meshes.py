"""The envs' shapes as instanced meshes, each instance at its level of detail.

Every shape of :mod:`primitives` (a unit primitive of one kind, or a mesh
asset) is one instanced mesh per level of detail for all envs, so a frame is
a handful of messages whatever the env count. Each instance sits in the mesh
of the coarsest level its size on the open pages allows (:mod:`detail`);
instances move between those meshes only when their level changes, and only
then are their scales and colours sent again. :class:`ShapeMeshes` builds
and poses them; :class:`~braxviewer.web.render.SceneView` says when.
"""

from __future__ import annotations

from typing import Callable, Collection, List, Optional, Sequence

import numpy as np
import viser

from braxviewer.web import detail
from braxviewer.web.primitives import Parts, Shape


class ShapeMeshes:
  """One instanced mesh per shape and level of detail, for N envs.

  Args:
    server: the viser server.
    root: the scene path the meshes go under.
    parts: the per-env shapes (:attr:`Parts.shapes`; a shared static world
      already split off).
    offsets: ``(N, 3)`` grid offset of every env (the first pose).
    on_click: called with viser's click event on any instance, or None.

  Attributes:
    handles: per shape, its mesh handle per level of detail (one for a mesh
      asset: drawn as it is).
    levels: per shape, the level of each drawn instance (None: choose before
      the next frame).
  """

  def __init__(
    self,
    server: viser.ViserServer,
    root: str,
    parts: Parts,
    offsets: np.ndarray,
    on_click: Optional[Callable] = None,
  ):
    self._server = server
    self._root = root
    self._parts = parts
    self._offsets = offsets
    self.num_envs = len(offsets)
    self._on_click = on_click
    self.handles: List[List] = [self._add(shape) for shape in parts.shapes]
    self.levels: List[Optional[np.ndarray]] = [None] * len(parts.shapes)

  @property
  def shapes(self) -> List[Shape]:
    return self._parts.shapes

  def _instances(self, shape: Shape, envs: slice):
    n = len(range(*envs.indices(self.num_envs)))
    return (
      np.tile(shape.scale, (n, 1)),
      np.tile(shape.rgb, (n, 1)),
      np.tile(shape.opacity, n),
    )

  def _add(self, shape: Shape) -> List:
    """One instanced mesh per level of detail, all envs in the coarsest."""
    nbody = self._parts.model.nbody
    pos, quat = self._parts.poses(
      shape,
      np.broadcast_to(self._offsets[:, None], (self.num_envs, nbody, 3)),
      np.tile([1.0, 0.0, 0.0, 0.0], (self.num_envs, nbody, 1)),
    )
    scale, rgb, opacity = self._instances(shape, slice(None))
    name = f"{self._root}/{shape.kind.replace(':', '_')}"
    if shape.category != "geom":  # sites: their own meshes (hidden apart)
      name = f"{self._root}/{shape.category}s/{shape.kind.replace(':', '_')}"
    if shape.mesh is not None:
      handles = [
        self._server.scene.add_batched_meshes_trimesh(
          name,
          shape.mesh,
          batched_wxyzs=quat,
          batched_positions=pos,
          batched_scales=scale,
          lod="off",
        )
      ]
    else:
      handles = []
      for i, level in enumerate(detail.levels(shape.kind)):
        handles.append(
          self._server.scene.add_batched_meshes_simple(
            f"{name}/{i}",
            np.asarray(level.mesh.vertices, np.float32),
            np.asarray(level.mesh.faces, np.uint32),
            batched_wxyzs=quat,
            batched_positions=pos,
            batched_scales=scale,
            batched_colors=rgb,
            batched_opacities=None if np.all(opacity >= 1) else opacity,
            lod="off",
            visible=i == 0,
          )
        )
    if self._on_click is not None:
      for handle in handles:
        handle.on_click(self._on_click)
    return handles

  # -- per frame -----------------------------------------------------------

  def show(
    self,
    xpos: np.ndarray,
    xquat: np.ndarray,
    envs: slice,
    hidden: Collection[str],
    views: Optional[Sequence[detail.View]],
    resized: bool,
    shift: np.ndarray,
  ) -> None:
    """Pose the shapes of the drawn ``envs`` (their body poses ``xpos``,
    ``xquat``), but those of a ``hidden`` category; with ``views`` (the
    pages' cameras, the scene moved by ``shift``) choose their levels of
    detail anew (``resized``: other envs drawn, every instance moves)."""
    for i, shape in enumerate(self.shapes):
      if shape.category in hidden:
        continue
      pos, quat = self._parts.poses(shape, xpos, xquat)
      changed = False
      if views is not None:
        changed = self._choose_levels(i, pos, envs, resized, views, shift)
      self._pose_levels(i, pos, quat, envs, changed)

  def _choose_levels(
    self,
    i: int,
    pos: np.ndarray,
    envs: slice,
    resized: bool,
    views: Sequence[detail.View],
    shift: np.ndarray,
  ) -> bool:
    """Level of detail of each drawn instance of shape ``i``; True when it
    changed (the instances move between meshes)."""
    shape = self.shapes[i]
    if len(self.handles[i]) > 1:
      drawn = len(range(*envs.indices(self.num_envs)))
      new = detail.choose(
        np.tile(shape.radius, drawn),
        pos + shift,
        views,
        [level.deviation for level in detail.levels(shape.kind)],
      )
    else:
      new = np.zeros(len(pos), dtype=np.int64)
    old = self.levels[i]
    if not resized and old is not None and np.array_equal(new, old):
      return False
    self.levels[i] = new
    return True

  def _pose_levels(
    self, i: int, pos: np.ndarray, quat: np.ndarray, envs: slice, changed: bool
  ) -> None:
    shape, levels = self.shapes[i], self.levels[i]
    if levels is None or len(levels) != len(pos):  # not chosen yet
      levels = self.levels[i] = np.zeros(len(pos), dtype=np.int64)
      changed = True
    # Per-instance arrays, wanted when instances moved between levels.
    instances = self._instances(shape, envs) if changed else None
    for level, handle in enumerate(self.handles[i]):
      mask = levels == level
      if not mask.any():
        if changed:
          handle.visible = False
        continue
      handle.batched_positions = pos[mask]
      handle.batched_wxyzs = quat[mask]
      if instances is not None:  # changed: every per-instance array
        scale, rgb, opacity = instances
        handle.batched_scales = scale[mask]
        if shape.mesh is None:
          handle.batched_colors = rgb[mask]
          if not np.all(opacity >= 1):
            handle.batched_opacities = opacity[mask]
        handle.visible = True

  # -- state -----------------------------------------------------------------

  def set_visible(self, category: str, visible: bool) -> None:
    """Shapes of ``category`` shown again (their levels chosen anew at the
    next frame) or hidden now."""
    for i, shape in enumerate(self.shapes):
      if shape.category == category:
        self.levels[i] = None  # shown again: levels chosen anew
        if not visible:
          for handle in self.handles[i]:
            handle.visible = False

  @property
  def triangles(self) -> int:
    """Triangles drawn now (mesh assets left out: drawn as they are)."""
    total = 0
    for shape, levels in zip(self.shapes, self.levels):
      if shape.mesh is None and levels is not None:
        meshes = detail.levels(shape.kind)
        counts = np.bincount(levels, minlength=len(meshes))
        total += sum(int(n) * m.triangles for n, m in zip(counts, meshes))
    return total

  def detail_levels(self, kind: str) -> Optional[np.ndarray]:
    """The level of each drawn instance of the first shape whose kind
    starts with ``kind``, or None before one was chosen."""
    for shape, levels in zip(self.shapes, self.levels):
      if shape.kind.startswith(kind):
        return None if levels is None else levels.copy()
    return None

  def remove(self) -> None:
    for handles in self.handles:
      for handle in handles:
        handle.remove()
