"""What the scene draws over the envs: the selected env's marker and label,
and a red dot over each env whose episode just ended (fading over frames).

Placed from the envs' roots (their tracked body) every frame, so they
follow the robots; with one env there is nothing to tell apart and no
marker is shown.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import trimesh
import viser

MARKER_COLOR = (230, 60, 60)
SELECT_COLOR = (255, 190, 0)


class EnvMarkers:
  """The selection marker, its label and the done dots of N envs.

  Args:
    server: the viser server.
    root: the scene path they go under.
    num_envs: envs in the scene.
    extent: the robot's radius (marker sizes and heights scale with it).
    roots: ``(N, 3)`` where each env's robot is now.

  Attributes:
    marker: the sphere over the selected env.
  """

  def __init__(
    self,
    server: viser.ViserServer,
    root: str,
    num_envs: int,
    extent: float,
    roots: np.ndarray,
  ):
    self.num_envs = num_envs
    self._extent = extent
    self.marker = server.scene.add_icosphere(
      f"{root}/selected",
      radius=0.06 * extent,
      color=SELECT_COLOR,
      cast_shadow=False,
      receive_shadow=False,
    )
    self._label = server.scene.add_label(
      f"{root}/selected_label", "env 0", anchor="bottom-center"
    )
    # one env: nothing to tell apart, no marker over its head
    self.marker.visible = self._label.visible = num_envs > 1
    sphere = trimesh.creation.icosphere(subdivisions=1, radius=0.08 * extent)
    self._dones = server.scene.add_batched_meshes_simple(
      f"{root}/done",
      np.asarray(sphere.vertices, np.float32),
      np.asarray(sphere.faces, np.uint32),
      batched_wxyzs=np.tile([1.0, 0.0, 0.0, 0.0], (num_envs, 1)),
      batched_positions=self._above(roots, 0.5),
      batched_scales=np.zeros(num_envs),
      batched_colors=MARKER_COLOR,
      cast_shadow=False,
      receive_shadow=False,
    )
    self._done_scale = np.zeros(num_envs)

  def _above(self, roots: np.ndarray, height: float) -> np.ndarray:
    return roots + [0.0, 0.0, height * self._extent]

  def place_selected(self, env: int, roots: np.ndarray) -> None:
    """The marker and its label over ``env`` (at ``roots[env]``)."""
    above = roots[env] + [0.0, 0.0, 0.55 * self._extent]
    self.marker.position = above
    self._label.position = above + [0.0, 0.0, 0.07 * self._extent]
    self._label.text = f"env {env}"

  def mark_done(
    self, done: np.ndarray, roots: np.ndarray, only: Optional[int]
  ) -> None:
    """Red dots above envs whose episode just ended (``done (N,)``); they
    fade over frames. ``only``: the one env drawn, or None."""
    scale = np.where(done, 1.0, self._done_scale * 0.85)
    scale[scale < 0.05] = 0.0
    if only is not None:
      keep = np.zeros_like(scale)
      keep[only] = scale[only]
      scale = keep
    if np.any(scale) or np.any(self._done_scale):
      self._dones.batched_positions = self._above(roots, 0.5)
      self._dones.batched_scales = scale
    self._done_scale = scale

  def remove(self) -> None:
    for handle in (self.marker, self._label, self._dones):
      handle.remove()
