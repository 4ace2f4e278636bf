"""Quaternion math for batches of MuJoCo poses, in numpy.

MuJoCo writes orientations as quaternions (w, x, y, z); the scene and record
layers turn them into rotation matrices, compose them and rotate vectors by
them, for whole ``(..., 4)`` arrays at once (every body of every env of
every frame). Kept here so those layers need neither a web library nor a
loop over ``mujoco.mju_*`` calls. numpy only.
"""

from __future__ import annotations

import numpy as np


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  ax, ay, az = a[..., 0], a[..., 1], a[..., 2]
  bx, by, bz = b[..., 0], b[..., 1], b[..., 2]
  return np.stack([ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx], -1)


def rotate(quat: np.ndarray, vec: np.ndarray) -> np.ndarray:
  """``vec`` rotated by unit quaternions ``quat`` (w, x, y, z); broadcasts."""
  w = quat[..., :1]
  u = quat[..., 1:]
  t = 2.0 * _cross(u, vec)
  return vec + w * t + _cross(u, t)


def multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """Quaternion products ``a * b`` (w, x, y, z); broadcasts."""
  aw, av = a[..., :1], a[..., 1:]
  bw, bv = b[..., :1], b[..., 1:]
  w = aw * bw - np.sum(av * bv, axis=-1, keepdims=True)
  v = aw * bv + bw * av + _cross(av, bv)
  return np.concatenate([w, v], axis=-1)


def to_matrix(quat: np.ndarray) -> np.ndarray:
  """``(..., 3, 3)`` float64 rotation matrices of quaternions ``(..., 4)``
  (w, x, y, z) of any nonzero length: each is normalised first (streamed
  poses are unit only to float precision)."""
  quat = np.asarray(quat, dtype=np.float64)
  # q scaled to length sqrt(2): the products below are then 2 q_i q_j
  q = quat * np.sqrt(2.0 / np.sum(quat * quat, axis=-1, keepdims=True))
  w, x, y, z = np.moveaxis(q, -1, 0)
  return np.stack(
    [
      np.stack([1.0 - y * y - z * z, x * y - z * w, x * z + y * w], -1),
      np.stack([x * y + z * w, 1.0 - x * x - z * z, y * z - x * w], -1),
      np.stack([x * z - y * w, y * z + x * w, 1.0 - x * x - y * y], -1),
    ],
    axis=-2,
  )


def z_to(direction: np.ndarray) -> np.ndarray:
  """Quaternions (w, x, y, z) of the smallest rotations taking +z onto
  ``direction (..., 3)`` (any length; +z where it is zero)."""
  norm = np.linalg.norm(direction, axis=-1, keepdims=True)
  unit = np.where(norm > 0, direction / np.maximum(norm, 1e-300), [0, 0, 1])
  quat = np.stack(
    [
      1.0 + unit[..., 2],
      -unit[..., 1],
      unit[..., 0],
      np.zeros(unit.shape[:-1]),
    ],
    axis=-1,
  )
  flipped = quat[..., 0] < 1e-12  # pointing down: half a turn about x
  quat[flipped] = [0.0, 1.0, 0.0, 0.0]
  return quat / np.linalg.norm(quat, axis=-1, keepdims=True)
