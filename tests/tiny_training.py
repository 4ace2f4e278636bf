"""Shared tiny PPO configurations and helpers for the trainer tests.

Trainings here are as small as PPO allows: compile time dominates (tens of
seconds on 2 CPU cores), so each test trains once or twice at most.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any, Callable, Iterator, List, Mapping

from brax.training.agents.ppo import networks as ppo_networks
import jax
import numpy as np

from braxviewer import HeadlessViewer

SMALL_NETWORKS = functools.partial(
  ppo_networks.make_ppo_networks,
  policy_hidden_layer_sizes=(16,),
  value_hidden_layer_sizes=(16,),
)

# 8 envs, 4 unrolls of 5 steps per training step (160 env steps), 2 training
# steps per epoch, 3 evals (initial + 2 epochs).
TINY = dict(
  num_timesteps=640,
  num_evals=3,
  episode_length=20,
  num_envs=8,
  batch_size=8,
  num_minibatches=4,
  unroll_length=5,
  num_updates_per_batch=2,
  num_eval_envs=4,
  seed=3,
  normalize_observations=True,
  network_factory=SMALL_NETWORKS,
)


def flat_params(params) -> np.ndarray:
  return np.concatenate(
    [np.ravel(np.asarray(x)) for x in jax.tree.leaves(params)]
  )


class CompileCounter:
  """Counts XLA backend compiles while active."""

  def __init__(self):
    self.count = 0
    self.active = False

  def _on_event(self, event: str, duration: float, **kwargs) -> None:
    del duration, kwargs
    if self.active and event == "/jax/core/compile/backend_compile_duration":
      self.count += 1


_COUNTER = CompileCounter()
jax.monitoring.register_event_duration_secs_listener(_COUNTER._on_event)


@contextlib.contextmanager
def count_compiles() -> Iterator[CompileCounter]:
  _COUNTER.count = 0
  _COUNTER.active = True
  try:
    yield _COUNTER
  finally:
    _COUNTER.active = False


def eval_rewards(records: List) -> List[float]:
  return [float(m["eval/episode_reward"]) for _, m in records]


def train_and_record(
  train_fn: Callable[..., Any], env: Any, config: Mapping[str, Any], **kw
):
  """Train with ``config`` (and ``kw``): (flat params, eval rewards, the
  env steps of each progress report)."""
  records = []
  _, params, _ = train_fn(
    environment=env,
    progress_fn=lambda s, m: records.append((s, m)),
    **{**config, **kw},
  )
  return flat_params(params), eval_rewards(records), [s for s, _ in records]


class ScheduledViewer(HeadlessViewer):
  """Switches modes like a user would, mid training: live after the first
  eval (set by the test), sync on the first chunk the trainer sent while
  live, off on the first chunk it sent while in sync."""

  def on_chunk(self, chunk):
    super().on_chunk(chunk)
    running = self.trainer_modes[-1]
    if chunk.source == "train" and running == self.mode == "live":
      self.set_mode("sync")
    elif chunk.source == "train" and running == self.mode == "sync":
      self.set_mode("off")
