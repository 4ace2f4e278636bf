"""A stand-in trainer: N MuJoCo envs stepped by mujoco itself, streamed through
the :class:`~braxviewer.core.protocol.TrainingViewer` protocol exactly as the PPO
trainer does (stream start, trainer mode, chunks, progress, stream end).

For page tests, benchmarks and screenshots without JAX or a training run.
Controls are smooth random sinusoids, so bodies move visibly; episodes end
after ``episode_steps`` or when the state goes bad, then the env resets.
"""

from __future__ import annotations

import threading
import time
from typing import Optional

import mujoco
import numpy as np

from braxviewer.core.frames import FrameChunk
from braxviewer.core.protocol import Mode, StreamInfo, TrainingViewer

# A small model for page tests and demos: a red puck (free joint) carrying a
# blue arm on a motorised hinge. Seen from the top, every env is one red blob.
PUCK_XML = """
<mujoco model="puck">
  <option timestep="0.01"/>
  <worldbody>
    <light pos="0 0 3" dir="0 0 -1"/>
    <geom name="floor" type="plane" size="0 0 1" rgba="0.9 0.9 0.9 1"/>
    <body name="puck" pos="0 0 0.06">
      <freejoint/>
      <geom type="box" size="0.16 0.16 0.05" rgba="0.85 0.1 0.1 1"/>
      <body name="arm" pos="0 0 0.06">
        <joint name="hinge" type="hinge" axis="0 0 1" damping="0.05"/>
        <geom type="capsule" fromto="0 0 0.03 0.32 0 0.03" size="0.035"
              rgba="0.1 0.3 0.9 1" mass="0.05"/>
      </body>
    </body>
  </worldbody>
  <actuator><motor joint="hinge" gear="0.3" ctrlrange="-1 1"/></actuator>
</mujoco>
"""


class SyntheticStream:
  """Feeds ``viewer`` real frame chunks from a background thread.

  Args:
    viewer: any TrainingViewer.
    model: the single-env MuJoCo model.
    num_envs: envs streamed (None: ``viewer.requested_envs()`` or 16).
    chunk_length: frames per chunk (one training step of the trainer).
    frame_skip: physics steps per frame (dt = timestep * frame_skip).
    chunks_per_s: chunk production rate (None: as fast as physics allows).
    episode_steps: frames before an env resets.
    progress_every: chunks between two ``on_progress`` calls.
    seed: random seed for controls and resets.
  """

  def __init__(
    self,
    viewer: TrainingViewer,
    model: mujoco.MjModel,
    num_envs: Optional[int] = None,
    chunk_length: int = 20,
    frame_skip: int = 5,
    chunks_per_s: Optional[float] = 10.0,
    episode_steps: int = 200,
    progress_every: int = 5,
    seed: int = 0,
  ):
    self.viewer = viewer
    self.model = model
    self.num_envs = int(num_envs or viewer.requested_envs() or 16)
    self.chunk_length = int(chunk_length)
    self.frame_skip = int(frame_skip)
    self.chunks_per_s = chunks_per_s
    self.episode_steps = int(episode_steps)
    self.progress_every = int(progress_every)
    self.dt = float(model.opt.timestep) * self.frame_skip
    self._rng = np.random.default_rng(seed)
    self._data = [mujoco.MjData(model) for _ in range(self.num_envs)]
    self._steps = np.zeros(self.num_envs, dtype=np.int64)
    n_ctrl = max(model.nu, 1)
    self._freq = self._rng.uniform(0.5, 2.0, (self.num_envs, n_ctrl))
    self._phase = self._rng.uniform(0, 2 * np.pi, (self.num_envs, n_ctrl))
    self._stop = threading.Event()
    self._thread: Optional[threading.Thread] = None
    self.chunks_sent = 0
    self.chunks_made = 0
    self.env_steps = 0
    self.max_on_chunk_s = 0.0
    self.error: Optional[BaseException] = None
    for i in range(self.num_envs):
      self._reset(i)

  def _reset(self, i: int) -> None:
    data = self._data[i]
    mujoco.mj_resetData(self.model, data)
    data.qpos[:] += self._rng.normal(0, 0.02, self.model.nq)
    data.qvel[:] = self._rng.normal(0, 0.05, self.model.nv)
    self._steps[i] = 0

  def _unroll(self):
    m, t_len, n = self.model, self.chunk_length, self.num_envs
    qpos = np.zeros((t_len, n, m.nq), np.float32)
    reward = np.zeros((t_len, n), np.float32)
    done = np.zeros((t_len, n), np.float32)
    forward = np.zeros((t_len, n), np.float32)
    ctrl_cost = np.zeros((t_len, n), np.float32)
    for t in range(t_len):
      for i, data in enumerate(self._data):
        x0 = float(data.qpos[0]) if m.nq else 0.0
        if m.nu:
          lo, hi = m.actuator_ctrlrange[:, 0], m.actuator_ctrlrange[:, 1]
          limited = m.actuator_ctrllimited.astype(bool)
          wave = np.sin(self._freq[i] * data.time * 2 * np.pi + self._phase[i])
          data.ctrl[:] = np.where(
            limited, lo + (hi - lo) * (wave + 1) / 2, wave
          )
        for _ in range(self.frame_skip):
          mujoco.mj_step(m, data)
        self._steps[i] += 1
        bad = not np.all(np.isfinite(data.qpos))
        forward[t, i] = (float(data.qpos[0]) - x0) / self.dt if m.nq else 0.0
        ctrl_cost[t, i] = -0.1 * float(np.sum(np.square(data.ctrl)))
        reward[t, i] = forward[t, i] + ctrl_cost[t, i] + 1.0
        qpos[t, i] = data.qpos
        if bad or self._steps[i] >= self.episode_steps:
          done[t, i] = 1.0
          self._reset(i)
    self.env_steps += t_len * n
    return (
      qpos,
      reward,
      done,
      {"reward_forward": forward, "reward_ctrl": ctrl_cost},
    )

  def _run(self) -> None:
    v = self.viewer
    info = StreamInfo(
      num_envs=self.num_envs,
      num_train_envs=self.num_envs,
      envs_per_device=self.num_envs,
      kind="qpos",
      nq=self.model.nq,
      num_links=None,
      dt=self.dt,
      chunk_length=self.chunk_length,
      reward_terms=("reward_forward", "reward_ctrl"),
      backend="mujoco",
    )
    v.on_stream_start(info)
    trainer_mode = None
    period = 1.0 / self.chunks_per_s if self.chunks_per_s else 0.0
    next_at = time.monotonic()
    seq = 0
    t_start = time.monotonic()
    try:
      while not self._stop.is_set():
        mode = Mode.parse(v.mode)
        if mode != trainer_mode:
          trainer_mode = mode
          v.on_trainer_mode(mode)
        qpos, reward, done, terms = self._unroll()
        self.chunks_made += 1
        if mode != Mode.OFF:
          chunk = FrameChunk(
            seq=seq,
            source="train",
            env_steps=self.env_steps,
            dt=self.dt,
            reward=reward,
            done=done,
            truncation=np.zeros_like(done),
            metrics=terms,
            wall_time=time.time(),
            qpos=qpos,
          )
          seq += 1
          started = time.monotonic()
          v.on_chunk(chunk)
          self.max_on_chunk_s = max(
            self.max_on_chunk_s, time.monotonic() - started
          )
          self.chunks_sent += 1
        if self.chunks_made % self.progress_every == 0:
          elapsed = max(time.monotonic() - t_start, 1e-6)
          v.on_progress(
            self.env_steps,
            {
              "eval/episode_reward": float(
                np.tanh(self.chunks_made / 50.0) * 100.0
              ),
              "training/sps": self.env_steps / elapsed,
              "training/policy_loss": float(np.exp(-self.chunks_made / 40.0)),
              "training/v_loss": float(0.5 * np.exp(-self.chunks_made / 60.0)),
            },
          )
        if period:
          next_at += period
          self._stop.wait(max(0.0, next_at - time.monotonic()))
    except BaseException as err:
      self.error = err
    finally:
      v.on_stream_end()

  def start(self) -> "SyntheticStream":
    self._thread = threading.Thread(
      target=self._run, name="synthetic-stream", daemon=True
    )
    self._thread.start()
    return self

  @property
  def alive(self) -> bool:
    return self._thread is not None and self._thread.is_alive()

  def stop(self, timeout: float = 10.0) -> None:
    self._stop.set()
    if self._thread is not None:
      self._thread.join(timeout)

  def __enter__(self) -> "SyntheticStream":
    return self.start()

  def __exit__(self, *exc) -> None:
    self.stop()
