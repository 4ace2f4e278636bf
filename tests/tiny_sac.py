"""A tiny SAC configuration shared by the SAC trainer tests.

8 envs, a 32-step replay prefill, then 2 epochs of 30 training steps (one
env step of all 8 envs each), 3 evals (initial + 2 epochs).
"""

from __future__ import annotations

import functools

from brax import envs
from brax.training.agents.sac import networks as sac_networks

SMALL_NETWORKS = functools.partial(
  sac_networks.make_sac_networks, hidden_layer_sizes=(16,)
)

TINY_SAC = dict(
  num_timesteps=512,
  num_evals=3,
  episode_length=20,
  num_envs=8,
  batch_size=16,
  min_replay_size=32,
  max_replay_size=1024,
  grad_updates_per_step=2,
  num_eval_envs=4,
  seed=5,
  normalize_observations=True,
  learning_rate=1e-3,
  network_factory=SMALL_NETWORKS,
)

STEPS_PER_EPOCH = 30  # (512 - 32) / (2 epochs x 8 envs)


def pendulum():
  return envs.get_environment("inverted_pendulum", backend="generalized")
