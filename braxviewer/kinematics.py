"""Body poses of N envs of one MuJoCo model from their ``qpos``.

MuJoCo's own ``mj_kinematics`` does the work, so poses are exactly the ones
MuJoCo (and mjx / brax generalized) computes. For speed, N envs go through
one call per frame on a *kinematic twin*: a model holding N copies of the
single model's body tree (same body and joint frames, joint axes, anchors
and reference positions; no geometry), all at the origin. Its results are
checked bit for bit against the single model when it is built; where a twin
cannot be built or differs, each env runs through the single model instead.
numpy + mujoco only.
"""

from __future__ import annotations

import threading
from typing import Optional, Tuple

import mujoco
import numpy as np

from braxviewer import grid

_HINGE = int(mujoco.mjtJoint.mjJNT_HINGE)
_SLIDE = int(mujoco.mjtJoint.mjJNT_SLIDE)


def _twin_spec(model: mujoco.MjModel, copies: int) -> mujoco.MjSpec:
  """``copies`` body trees of ``model``, each at the origin, env-major."""
  spec = mujoco.MjSpec()
  spec.compiler.degree = False
  spec.compiler.autolimits = True
  for k in range(copies):
    made = [spec.worldbody]
    for b in range(1, model.nbody):
      body = made[model.body_parentid[b]].add_body(
        name=f"e{k}/{b}", pos=model.body_pos[b], quat=model.body_quat[b]
      )
      body.mocap = bool(model.body_mocapid[b] >= 0)
      body.explicitinertial = True
      body.mass = 1.0
      body.inertia = [1.0, 1.0, 1.0]
      first = model.body_jntadr[b]
      for j in range(first, first + model.body_jntnum[b]):
        kind = int(model.jnt_type[j])
        joint = body.add_joint(
          type=mujoco.mjtJoint(kind),
          axis=model.jnt_axis[j],
          pos=model.jnt_pos[j],
        )
        if kind in (_HINGE, _SLIDE):
          joint.ref = float(model.qpos0[model.jnt_qposadr[j]])
      made.append(body)
  return spec


def build_twin(model: mujoco.MjModel, copies: int) -> Optional[mujoco.MjModel]:
  """The kinematic twin of ``copies`` envs, or None where MuJoCo cannot build
  one laid out env by env."""
  try:
    twin = _twin_spec(model, copies).compile()
  except ValueError:
    return None
  if not grid.is_env_major(model, twin, copies):
    return None
  # The exact numbers of the single model, not their recompiled versions.
  twin.body_pos[1:] = np.tile(model.body_pos[1:], (copies, 1))
  twin.body_quat[1:] = np.tile(model.body_quat[1:], (copies, 1))
  twin.jnt_pos[:] = np.tile(model.jnt_pos, (copies, 1))
  twin.jnt_axis[:] = np.tile(model.jnt_axis, (copies, 1))
  twin.qpos0[:] = np.tile(model.qpos0, copies)
  return twin


class BatchKinematics:
  """``mj_kinematics`` for N envs of one model at a time.

  Args:
    model: the single-env model.
    num_envs: envs per frame.
    use_twin: False runs every env through the single model (the reference
      the twin is checked against).
  """

  def __init__(
    self, model: mujoco.MjModel, num_envs: int, use_twin: bool = True
  ):
    self.model = model
    self.num_envs = int(num_envs)
    self._lock = threading.Lock()
    self._data = mujoco.MjData(model)
    self._twin = build_twin(model, self.num_envs) if use_twin else None
    self._twin_data = None
    if self._twin is not None:
      self._twin_data = mujoco.MjData(self._twin)
      if not self._twin_matches():
        self._twin = self._twin_data = None

  @property
  def uses_twin(self) -> bool:
    """Whether one call serves all envs (False: one call per env)."""
    return self._twin is not None

  def _twin_matches(self) -> bool:
    """Twin and single model agree bit for bit on a perturbed pose."""
    rng = np.random.default_rng(0)
    qpos = self.model.qpos0 + 0.3 * rng.standard_normal(
      (1, self.num_envs, self.model.nq)
    )
    with self._lock:
      twin = self._run_twin(qpos)
      single = self._run_single(qpos)
    return all(np.array_equal(a, b) for a, b in zip(twin, single))

  def __call__(self, qpos: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """``qpos (M, N, nq)`` float64 -> body ``xpos (M, N, nbody, 3)`` and
    ``xquat (M, N, nbody, 4)`` in each env's own frame (no grid offset)."""
    with self._lock:
      if self._twin is not None:
        return self._run_twin(qpos)
      return self._run_single(qpos)

  def _empty(self, frames: int):
    nbody = self.model.nbody
    xpos = np.zeros((frames, self.num_envs, nbody, 3))
    xquat = np.zeros((frames, self.num_envs, nbody, 4))
    xquat[..., 0] = 1.0
    return xpos, xquat

  def _run_twin(self, qpos: np.ndarray):
    data, n, nb = self._twin_data, self.num_envs, self.model.nbody - 1
    assert data is not None  # only run with a twin
    xpos, xquat = self._empty(len(qpos))
    flat = qpos.reshape(len(qpos), -1)
    for t in range(len(qpos)):
      data.qpos[:] = flat[t]
      mujoco.mj_kinematics(self._twin, data)
      xpos[t, :, 1:] = data.xpos[1:].reshape(n, nb, 3)
      xquat[t, :, 1:] = data.xquat[1:].reshape(n, nb, 4)
    return xpos, xquat

  def _run_single(self, qpos: np.ndarray):
    data = self._data
    xpos, xquat = self._empty(len(qpos))
    for t in range(len(qpos)):
      for e in range(self.num_envs):
        data.qpos[:] = qpos[t, e]
        mujoco.mj_kinematics(self.model, data)
        xpos[t, e] = data.xpos
        xquat[t, e] = data.xquat
    return xpos, xquat
