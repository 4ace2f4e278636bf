"""The drawn envs' spatial tendons as one instanced tube mesh.

:class:`~braxviewer.scene.tendons.TendonPaths` gives every tendon a fixed
number of straight segments (unused ones of radius 0); each segment of each
env is one instance of a thin open tube, stretched and turned onto it per
frame, so the tendons of all envs are one message whatever their count.
"""

from __future__ import annotations

from typing import Callable, Optional

import mujoco
import numpy as np
import trimesh
import viser

from braxviewer.scene.quat import z_to
from braxviewer.scene.tendons import TendonPaths

SIDES = 6  # tendons are thin: a hexagonal tube, 12 triangles


def tube(sides: int) -> trimesh.Trimesh:
  """An open tube of radius 1 along z from -1 to 1 (a tendon segment: its
  ends are hidden in the next segment or in the sites it joins)."""
  angles = np.arange(sides) * (2 * np.pi / sides)
  ring = np.stack([np.cos(angles), np.sin(angles)], axis=1)
  verts = np.vstack(
    [np.c_[ring, np.full(sides, -1.0)], np.c_[ring, np.full(sides, 1.0)]]
  )
  j = np.arange(sides)
  k = (j + 1) % sides
  faces = np.vstack(
    [np.stack([j, k, j + sides], 1), np.stack([k, k + sides, j + sides], 1)]
  )
  return trimesh.Trimesh(verts, faces, process=False)


class TendonTubes:
  """The tendon segments of N envs in the scene.

  Args:
    server: the viser server.
    path: the scene path of the tube mesh.
    model: the single-env model.
    num_envs: envs drawn at most.
    on_click: called with viser's click event on a tube, or None.

  Attributes:
    paths: where the model's tendons run (for the drawn items too).
    handle: the tube mesh, or None without visible spatial tendons.
  """

  def __init__(
    self,
    server: viser.ViserServer,
    path: str,
    model: mujoco.MjModel,
    num_envs: int,
    on_click: Optional[Callable] = None,
  ):
    self.paths = TendonPaths(model)
    self._count = -1  # tendon instances the handle holds
    self.handle = None
    if not self.paths:
      return
    mesh = tube(SIDES)
    count = num_envs * self.paths.num_slots
    self.handle = server.scene.add_batched_meshes_simple(
      path,
      np.asarray(mesh.vertices, np.float32),
      np.asarray(mesh.faces, np.uint32),
      batched_wxyzs=np.tile([1.0, 0.0, 0.0, 0.0], (count, 1)),
      batched_positions=np.zeros((count, 3)),
      batched_scales=np.zeros((count, 3)),
      batched_colors=(128, 128, 128),
      lod="off",
    )
    if on_click is not None:
      self.handle.on_click(on_click)

  def show(self, xpos: np.ndarray, xquat: np.ndarray) -> None:
    """Pose the segments of the drawn envs' body poses ``xpos (E, nbody,
    3)``, ``xquat (E, nbody, 4)`` (unused slots: scale 0)."""
    handle = self.handle
    if handle is None:
      return
    seg = self.paths.segments(xpos, xquat)
    radius = seg.radius.reshape(-1)
    half = np.where(radius > 0, seg.half_length.reshape(-1), 0.0)
    count = len(radius)
    handle.batched_positions = seg.centre.reshape(-1, 3)
    handle.batched_wxyzs = z_to((seg.end - seg.start).reshape(-1, 3))
    handle.batched_scales = np.stack([radius, radius, half], axis=1)
    if count != self._count:  # first frame, or other envs drawn
      self._count = count
      rgba = np.tile(self.paths.rgba, (len(xpos), 1))
      handle.batched_colors = np.round(rgba[:, :3] * 255).astype(np.uint8)
      if np.any(rgba[:, 3] < 1):
        handle.batched_opacities = rgba[:, 3].astype(np.float32)
      handle.visible = True

  @property
  def triangles(self) -> int:
    """Triangles of the tubes last posed."""
    if self.handle is None:
      return 0
    return max(self._count, 0) * 2 * SIDES

  def set_visible(self, visible: bool) -> None:
    """Show or hide the tubes (shown: colours sent again at the next
    :meth:`show`)."""
    if self.handle is not None:
      self.handle.visible = visible
      self._count = -1

  def remove(self) -> None:
    if self.handle is not None:
      self.handle.remove()
