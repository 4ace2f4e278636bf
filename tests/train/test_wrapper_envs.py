"""braxviewer.wrap on real envs: a brax env and a MuJoCo Playground env in a
custom jitted training loop, and the loop under ``pmap`` on 2 forced CPU
devices (this file run as a script in a subprocess)."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
from typing import Any

import jax
import numpy as np
import pytest
from test_wrapper import (
  purejaxrl_loop,
  run_updates,
  same_bits,
  without_viewer,
)
from tiny_training import count_compiles

from braxviewer import HeadlessViewer, wrap

pytestmark = pytest.mark.slow
HERE = pathlib.Path(__file__).parents[1]  # the tests' helpers
MODES = ["off", "live", "sync", "off", "live"]


def brax_env() -> Any:
  from brax import envs
  from brax.envs.wrappers import training

  env = envs.get_environment("inverted_pendulum", backend="generalized")
  return training.wrap(env, episode_length=15)


def playground_env() -> Any:
  from mujoco_playground import registry, wrapper

  env = registry.load("CartpoleBalance", config_overrides={"impl": "jax"})
  return wrapper.wrap_for_brax_training(env, episode_length=15)


def _obs(state: Any) -> jax.Array:
  return state.obs


def _same_loop_and_streamed_poses(make_env, nq: int) -> None:
  """Plain vs wrapped (off, live, sync, off, live): same bits, no
  compile after the first call, the live calls' chunks in order with the
  loop's poses."""
  num_envs, rollout, shown, length = 6, 10, 3, 5
  plain = purejaxrl_loop(make_env(), num_envs, rollout, _obs)
  viewer = HeadlessViewer(num_envs=shown, mode="off")
  env = wrap(make_env(), viewer, chunk_length=length)
  wrapped = purejaxrl_loop(env, num_envs, rollout, _obs)
  key = jax.random.PRNGKey(0)
  want = run_updates(plain[1], plain[0](key), MODES)
  carry = wrapped[0](key)
  carry, first = run_updates(wrapped[1], carry, MODES[:1], viewer)
  with count_compiles() as counter:
    carry, rest = run_updates(wrapped[1], carry, MODES[1:], viewer)
  env.close()
  assert counter.count == 0
  assert same_bits(want, without_viewer((carry, first + rest)))
  assert viewer.ended and viewer.trainer_modes == [
    "off",
    "live",
    "sync",
    "off",
    "live",
  ]

  chunks = list(viewer.chunks)
  per_call = rollout // length
  assert [c.seq for c in chunks] == list(range(3 * per_call))
  assert all(c.qpos.shape == (length, shown, nq) for c in chunks)
  assert all(c.reward.shape == (length, shown) for c in chunks)
  steps = [
    (call * per_call + k + 1) * length * num_envs
    for call in (1, 2, 4)
    for k in range(per_call)
  ]
  assert [c.env_steps for c in chunks] == steps
  outs = first + rest
  poses = np.concatenate([np.asarray(outs[i][1][:, :shown]) for i in (1, 2, 4)])
  np.testing.assert_array_equal(np.concatenate([c.qpos for c in chunks]), poses)


def test_a_brax_env_loop_computes_the_same_bits_and_streams_its_poses():
  _same_loop_and_streamed_poses(brax_env, nq=2)


def test_a_playground_env_loop_computes_the_same_bits_and_streams_its_poses():
  _same_loop_and_streamed_poses(playground_env, nq=2)


# -- pmap on 2 forced CPU devices --------------------------------------------


def _pmap_check() -> dict:
  """Run in a subprocess: the wrapped loop under pmap on every device."""
  import jax.numpy as jnp

  devices = jax.local_device_count()
  num_envs, rollout = 4, 10
  viewer = HeadlessViewer(num_envs=2, mode="live")
  env = wrap(brax_env(), viewer, chunk_length=5, axis_name="i")

  def run(key):
    state = env.reset(jax.random.split(key, num_envs))

    def step(state, k):
      action = jnp.tanh(jax.random.normal(k, (num_envs, env.action_size)))
      state = env.step(state, action)
      return state, state.pipeline_state.q

    state, q = jax.lax.scan(step, state, jax.random.split(key, rollout))
    return jax.lax.pmean(jnp.mean(state.reward), "i"), q

  keys = jax.random.split(jax.random.PRNGKey(0), devices)
  _, q = jax.block_until_ready(jax.pmap(run, axis_name="i")(keys))
  jax.effects_barrier()
  env.close()
  chunks = list(viewer.chunks)
  streamed = np.concatenate([c.qpos for c in chunks])
  info = viewer.stream_info
  assert info is not None
  return {
    "devices": devices,
    "seq": [c.seq for c in chunks],
    "steps": [c.env_steps for c in chunks],
    "shapes": sorted({c.qpos.shape for c in chunks}),
    "train_envs": info.num_train_envs,
    "error_device_0": float(np.abs(streamed - np.asarray(q[0, :, :2])).max()),
    "error_device_1": float(np.abs(streamed - np.asarray(q[1, :, :2])).max()),
  }


def test_under_pmap_on_two_devices_only_device_0_streams_one_ordered_stream():
  env = dict(os.environ)
  env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
  env["PYTHONPATH"] = f"{HERE}{os.pathsep}{env.get('PYTHONPATH', '')}"
  proc = subprocess.run(
    [sys.executable, str(pathlib.Path(__file__)), "pmap"],
    capture_output=True,
    text=True,
    env=env,
    timeout=600,
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = json.loads(proc.stdout.strip().splitlines()[-1])
  assert out["devices"] == 2 and out["train_envs"] == 8
  assert out["seq"] == [0, 1]
  assert out["steps"] == [40, 80]  # 5 steps of 4 envs on 2 devices each
  assert out["shapes"] == [[5, 2, 2]]
  assert out["error_device_0"] == 0.0 and out["error_device_1"] > 0.0


if __name__ == "__main__" and sys.argv[1:] == ["pmap"]:
  print(json.dumps(_pmap_check()))
