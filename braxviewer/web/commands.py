"""Velocity commands drawn as arrows over the robots.

MuJoCo Playground's joystick envs keep the command the policy must follow in
``state.info["command"]``: ``(vx, vy, wz)``, forward and sideways speed in
the robot's heading frame (m/s) and a turn rate (rad/s). One instanced arrow
per env shows where the robot is asked to go: it points along the commanded
ground velocity, turned by the robot's heading, and its length grows with
the speed. numpy + viser, no JAX.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import trimesh
import viser

COMMAND_KEY = "command"
_COLOR = (40, 170, 90)
_STILL = 1e-3  # m/s: below this no arrow is drawn


def is_velocity_command(value: np.ndarray) -> bool:
  """Whether per-env info ``value`` ``(N, k)`` looks like a velocity
  command: 2 (vx, vy) or 3 (vx, vy, wz) numbers per env."""
  return value.ndim == 2 and value.shape[1] in (2, 3)


def heading(xquat: np.ndarray) -> np.ndarray:
  """``(N,)`` yaw (rad) of orientations ``xquat (N, 4)`` (w, x, y, z)."""
  w, x, y, z = np.moveaxis(np.asarray(xquat, np.float64), -1, 0)
  return np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def arrow_mesh() -> trimesh.Trimesh:
  """A unit arrow along +x: shaft then head, from x = 0 to x = 1."""
  shaft = trimesh.creation.cylinder(radius=0.06, height=0.7, sections=10)
  shaft.apply_translation([0.0, 0.0, 0.35])
  head = trimesh.creation.cone(radius=0.16, height=0.3, sections=12)
  head.apply_translation([0.0, 0.0, 0.7])
  arrow = trimesh.Trimesh(
    vertices=np.concatenate([shaft.vertices, head.vertices]),
    faces=np.concatenate([shaft.faces, head.faces + len(shaft.vertices)]),
  )
  # +z to +x
  arrow.apply_transform(
    trimesh.transformations.rotation_matrix(np.pi / 2, [0.0, 1.0, 0.0])
  )
  return arrow


def arrow_poses(
  command: np.ndarray, yaw: np.ndarray, size: float
) -> tuple[np.ndarray, np.ndarray]:
  """Per env ``(wxyz (N, 4), scale (N, 3))`` of the arrow for ``command
  (N, 2|3)`` and robot heading ``yaw (N,)``; ``size`` is the length (m) of
  the arrow for 1 m/s. Envs with no (or a NaN) command get scale 0."""
  command = np.asarray(command, np.float64)
  vx, vy = command[:, 0], command[:, 1]
  speed = np.hypot(vx, vy)
  angle = np.asarray(yaw, np.float64) + np.arctan2(vy, vx)
  wxyz = np.stack(
    [
      np.cos(angle / 2),
      np.zeros_like(angle),
      np.zeros_like(angle),
      np.sin(angle / 2),
    ],
    axis=1,
  )
  length = np.where(np.isfinite(speed) & (speed > _STILL), speed * size, 0.0)
  width = np.where(length > 0, size * 0.8, 0.0)
  scale = np.stack([length, width, width], axis=1)
  return np.nan_to_num(wxyz), scale


class CommandArrows:
  """One arrow per env over its robot.

  Args:
    server: the viser server.
    name: the scene node (under the envs' frame, so follow moves it too).
    num_envs: envs drawn.
    size: arrow length (m) for a command of 1 m/s, e.g. the robot's size.
  """

  def __init__(
    self, server: viser.ViserServer, name: str, num_envs: int, size: float
  ):
    self.num_envs = int(num_envs)
    self.size = float(size)
    self.shown_scale: np.ndarray = np.zeros((self.num_envs, 3))
    mesh = arrow_mesh()
    self._handle = server.scene.add_batched_meshes_simple(
      name,
      np.asarray(mesh.vertices, np.float32),
      np.asarray(mesh.faces, np.uint32),
      batched_wxyzs=np.tile([1.0, 0.0, 0.0, 0.0], (self.num_envs, 1)),
      batched_positions=np.zeros((self.num_envs, 3)),
      batched_scales=np.zeros((self.num_envs, 3)),
      batched_colors=_COLOR,
      cast_shadow=False,
      receive_shadow=False,
    )

  def show(
    self,
    above: np.ndarray,
    yaw: np.ndarray,
    command: np.ndarray,
    only: Optional[int] = None,
  ) -> None:
    """Arrows at ``above (N, 3)`` for ``command (N, 2|3)``; robots face
    ``yaw (N,)``; ``only``: draw that env's arrow alone."""
    wxyz, scale = arrow_poses(command, yaw, self.size)
    if only is not None:
      keep = np.zeros_like(scale)
      keep[only] = scale[only]
      scale = keep
    self._handle.batched_positions = np.asarray(above, np.float32)
    self._handle.batched_wxyzs = wxyz.astype(np.float32)
    self._handle.batched_scales = scale.astype(np.float32)
    self.shown_scale = scale

  def remove(self) -> None:
    self._handle.remove()
