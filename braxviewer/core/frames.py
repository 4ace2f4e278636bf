"""The frame chunk: what one training step (or eval) streams to a viewer.

Shared by both sides of the data path. The jit side (``braxviewer.train.tap``) fills
it from a host callback; viewers, the recorder and the scene read it. Plain
numpy, no JAX.
"""

from __future__ import annotations

import dataclasses
from typing import Literal, Mapping, Optional

import numpy as np

Source = Literal["train", "eval"]
PoseKind = Literal["qpos", "links"]


@dataclasses.dataclass(frozen=True)
class FrameChunk:
  """T consecutive env steps of the first N streamed envs.

  Attributes:
    seq: sequence number of this chunk within its source, from 0, no gaps
      except where chunks were dropped on the host (live mode).
    source: ``"train"`` for training unrolls, ``"eval"`` for eval rollouts.
    env_steps: training env steps done at the end of the streamed step
      (for eval: when the eval ran), i.e. the policy version.
    dt: simulated seconds between two frames (env.dt, action repeat included).
    qpos: ``(T, N, nq)`` generalized positions, or None for link poses.
    link_pos: ``(T, N, L, 3)`` world positions of the L links, or None.
    link_rot: ``(T, N, L, 4)`` world orientations (w, x, y, z), or None.
    reward: ``(T, N)`` reward after each step.
    done: ``(T, N)`` 1.0 where the episode ended at this step.
    truncation: ``(T, N)`` 1.0 where the episode was cut by the time limit.
    metrics: reward terms from ``state.metrics``, each ``(T, N)``.
    wall_time: host ``time.time()`` when the chunk left the device.
    mocap_pos: ``(T, N, nmocap, 3)`` positions of the mocap bodies (goals,
      targets an env moves), or None when the env has none (or the stream
      does not carry them: the model's default mocap pose is drawn).
    mocap_quat: ``(T, N, nmocap, 4)`` their orientations (w, x, y, z);
      given together with ``mocap_pos``.
    info: per-env ``state.info`` entries (e.g. a velocity ``command``), each
      float ``(T, N)`` or ``(T, N, k)``; nested names joined with ``/``.
  """

  seq: int
  source: Source
  env_steps: int
  dt: float
  reward: np.ndarray
  done: np.ndarray
  truncation: np.ndarray
  metrics: Mapping[str, np.ndarray]
  wall_time: float
  qpos: Optional[np.ndarray] = None
  link_pos: Optional[np.ndarray] = None
  link_rot: Optional[np.ndarray] = None
  mocap_pos: Optional[np.ndarray] = None
  mocap_quat: Optional[np.ndarray] = None
  info: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)

  def __post_init__(self):
    if (self.qpos is None) == (self.link_pos is None):
      raise ValueError(
        "FrameChunk needs exactly one of qpos or link_pos/link_rot."
      )
    if (self.link_pos is None) != (self.link_rot is None):
      raise ValueError("FrameChunk needs link_pos and link_rot together.")
    t, n = self.reward.shape
    pose = self.qpos if self.qpos is not None else self.link_pos
    assert pose is not None  # exactly one of them, checked above
    if pose.shape[:2] != (t, n):
      raise ValueError(
        f"FrameChunk pose leading shape {pose.shape[:2]} does not match"
        f" reward shape {(t, n)}."
      )
    self._check_mocap(t, n)
    for name, value in self.info.items():
      shape = np.shape(value)
      if shape[:2] != (t, n) or len(shape) > 3:
        raise ValueError(
          f"FrameChunk info {name!r} has shape {shape}; it needs {(t, n)}"
          f" or {(t, n)} + (k,), like reward."
        )

  def _check_mocap(self, t: int, n: int) -> None:
    pos, quat = self.mocap_pos, self.mocap_quat
    if (pos is None) != (quat is None):
      raise ValueError("FrameChunk needs mocap_pos and mocap_quat together.")
    if pos is None or quat is None:
      return
    ps, qs = np.shape(pos), np.shape(quat)
    if (
      len(ps) != 4
      or len(qs) != 4
      or ps[:2] != (t, n)
      or ps[3] != 3
      or qs[:3] != ps[:3]
      or qs[3] != 4
    ):
      raise ValueError(
        f"FrameChunk mocap shapes {ps} and {qs} do not match: they need"
        f" {(t, n)} + (nmocap, 3) and {(t, n)} + (nmocap, 4), like reward."
      )

  @property
  def kind(self) -> PoseKind:
    return "qpos" if self.qpos is not None else "links"

  @property
  def num_steps(self) -> int:
    return int(self.reward.shape[0])

  @property
  def num_envs(self) -> int:
    return int(self.reward.shape[1])

  @property
  def nmocap(self) -> int:
    """Mocap bodies streamed per env (0: none)."""
    return 0 if self.mocap_pos is None else int(self.mocap_pos.shape[2])


def fit_envs(chunk: FrameChunk, num_envs: int) -> FrameChunk:
  """``chunk`` with exactly ``num_envs`` envs: extra envs cut, missing ones
  NaN in the poses and mocap (a viewer draws them at their last pose) and 0
  in the rewards, dones, terms and info."""

  def fit_array(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    out = np.full(a.shape[:1] + (num_envs,) + a.shape[2:], np.nan)
    k = min(num_envs, a.shape[1])
    out[:, :k] = a[:, :k]
    return out

  def fit(a: Optional[np.ndarray]) -> Optional[np.ndarray]:
    return None if a is None else fit_array(a)

  def zeros(a: np.ndarray) -> np.ndarray:
    return np.nan_to_num(fit_array(a))

  return dataclasses.replace(
    chunk,
    qpos=fit(chunk.qpos),
    link_pos=fit(chunk.link_pos),
    link_rot=fit(chunk.link_rot),
    mocap_pos=fit(chunk.mocap_pos),
    mocap_quat=fit(chunk.mocap_quat),
    reward=zeros(chunk.reward),
    done=zeros(chunk.done),
    truncation=zeros(chunk.truncation),
    metrics={k: zeros(v) for k, v in chunk.metrics.items()},
    info={k: zeros(v) for k, v in chunk.info.items()},
  )
