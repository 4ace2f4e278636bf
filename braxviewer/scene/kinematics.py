"""Body poses of N envs of one MuJoCo model from their ``qpos`` (and the
mocap bodies' poses, where an env moves them).

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

from braxviewer.scene import grid

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
  if model.nmocap:  # env k's mocap ids: k * nmocap + the model's, in order
    ids = twin.body_mocapid[1:].reshape(copies, model.nbody - 1)
    own = model.body_mocapid[1:]
    want = np.where(
      own >= 0, own + model.nmocap * np.arange(copies)[:, None], -1
    )
    if twin.nmocap != copies * model.nmocap or not np.array_equal(ids, want):
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
    # The model's own mocap poses (MuJoCo's reset: the bodies' pos/quat).
    self._mocap_pos0 = self._data.mocap_pos.copy()
    self._mocap_quat0 = self._data.mocap_quat.copy()
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

  @property
  def nmocap(self) -> int:
    """Mocap bodies of one env."""
    return int(self.model.nmocap)

  def _twin_matches(self) -> bool:
    """Twin and single model agree bit for bit on a perturbed pose (mocap
    bodies moved too)."""
    rng = np.random.default_rng(0)
    n, m = self.num_envs, self.nmocap
    qpos = self.model.qpos0 + 0.3 * rng.standard_normal((1, n, self.model.nq))
    mocap_pos = self._mocap_pos0 + 0.3 * rng.standard_normal((1, n, m, 3))
    mocap_quat = self._mocap_quat0 + 0.3 * rng.standard_normal((1, n, m, 4))
    mocap = (mocap_pos, mocap_quat)
    with self._lock:
      twin = self._run_twin(qpos, *mocap)
      single = self._run_single(qpos, *mocap)
    return all(np.array_equal(a, b) for a, b in zip(twin, single))

  def __call__(
    self,
    qpos: np.ndarray,
    mocap_pos: Optional[np.ndarray] = None,
    mocap_quat: Optional[np.ndarray] = None,
  ) -> Tuple[np.ndarray, np.ndarray]:
    """``qpos (M, N, nq)`` float64 -> body ``xpos (M, N, nbody, 3)`` and
    ``xquat (M, N, nbody, 4)`` in each env's own frame (no grid offset).

    ``mocap_pos (M, N, nmocap, 3)`` and ``mocap_quat (M, N, nmocap, 4)``
    place the mocap bodies (MuJoCo normalizes the quaternions); None: the
    model's own mocap pose."""
    frames = len(qpos)
    shape = (frames, self.num_envs, self.nmocap)
    if mocap_pos is None:
      mocap_pos = np.broadcast_to(self._mocap_pos0, shape + (3,))
    if mocap_quat is None:
      mocap_quat = np.broadcast_to(self._mocap_quat0, shape + (4,))
    with self._lock:
      if self._twin is not None:
        return self._run_twin(qpos, mocap_pos, mocap_quat)
      return self._run_single(qpos, mocap_pos, mocap_quat)

  def _empty(self, frames: int):
    nbody = self.model.nbody
    xpos = np.zeros((frames, self.num_envs, nbody, 3))
    xquat = np.zeros((frames, self.num_envs, nbody, 4))
    xquat[..., 0] = 1.0
    return xpos, xquat

  def _run_twin(self, qpos: np.ndarray, mocap_pos, mocap_quat):
    data, n, nb = self._twin_data, self.num_envs, self.model.nbody - 1
    assert data is not None  # only run with a twin
    xpos, xquat = self._empty(len(qpos))
    flat = qpos.reshape(len(qpos), -1)
    mocap = self.nmocap > 0
    for t in range(len(qpos)):
      data.qpos[:] = flat[t]
      if mocap:
        data.mocap_pos[:] = mocap_pos[t].reshape(-1, 3)
        data.mocap_quat[:] = mocap_quat[t].reshape(-1, 4)
      mujoco.mj_kinematics(self._twin, data)
      xpos[t, :, 1:] = data.xpos[1:].reshape(n, nb, 3)
      xquat[t, :, 1:] = data.xquat[1:].reshape(n, nb, 4)
    return xpos, xquat

  def _run_single(self, qpos: np.ndarray, mocap_pos, mocap_quat):
    data = self._data
    xpos, xquat = self._empty(len(qpos))
    mocap = self.nmocap > 0
    for t in range(len(qpos)):
      for e in range(self.num_envs):
        data.qpos[:] = qpos[t, e]
        if mocap:
          data.mocap_pos[:] = mocap_pos[t, e]
          data.mocap_quat[:] = mocap_quat[t, e]
        mujoco.mj_kinematics(self.model, data)
        xpos[t, e] = data.xpos
        xquat[t, e] = data.xquat
    return xpos, xquat
