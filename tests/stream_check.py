"""Runs a tiny training with a headless viewer and prints what was streamed.

Used by test_train_stream.py in a subprocess, so XLA_FLAGS can force several
CPU devices before JAX starts. Prints one JSON object on the last line.
"""

import json
import sys

from brax import envs
import jax
import mujoco
import numpy as np
from tiny_training import TINY

from braxviewer import HeadlessViewer
from braxviewer.brax.training.agents.ppo import train as ppo


def body_position_error(env, chunk) -> float:
  """Max distance between MuJoCo kinematics of the streamed qpos and the
  env's own body positions for the same q (brax's forward kinematics)."""
  model = env.sys.mj_model
  data = mujoco.MjData(model)
  qpos = chunk.qpos.reshape(-1, model.nq).astype(np.float64)
  init = jax.jit(
    jax.vmap(lambda q: env.pipeline_init(q, jax.numpy.zeros(env.sys.qd_size())))
  )
  brax_x = np.asarray(init(qpos.astype(np.float32)).x.pos)
  err = 0.0
  for i, q in enumerate(qpos):
    data.qpos[:] = q
    mujoco.mj_kinematics(model, data)
    err = max(err, float(np.max(np.abs(data.xpos[1:] - brax_x[i]))))
  return err


def main(backend: str) -> None:
  env = envs.get_environment("inverted_pendulum", backend=backend)
  viewer = HeadlessViewer(num_envs=4, mode="live")
  ppo.train(environment=env, viewer=viewer, **TINY)
  chunks = list(viewer.chunks)
  train = [c for c in chunks if c.source == "train"]
  evals = [c for c in chunks if c.source == "eval"]
  info = viewer.stream_info
  out = {
    "devices": jax.local_device_count(),
    "train_seq": [c.seq for c in train],
    "train_steps": [c.env_steps for c in train],
    "eval_steps": [c.env_steps for c in evals],
    "shapes": sorted({tuple(c.qpos.shape) for c in train}),
    "eval_shapes": sorted({tuple(c.qpos.shape) for c in evals}),
    "reward_shape": list(train[0].reward.shape),
    "nq": info.nq,
    "stream_envs": info.num_envs,
    "dt": info.dt,
    "ended": viewer.ended,
    "pose_error": max(body_position_error(env, c) for c in train[:3]),
    "finite": bool(all(np.isfinite(c.qpos).all() for c in chunks)),
    "distinct_envs": bool(np.ptp(train[-1].qpos, axis=1).max() > 0),
  }
  print(json.dumps(out))


if __name__ == "__main__":
  main(sys.argv[1])
