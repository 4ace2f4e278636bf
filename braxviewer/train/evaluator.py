"""Eval rollouts, as brax's ``acting.Evaluator`` runs them, optionally streamed.

Same key schedule and metrics as ``brax.training.acting.Evaluator``, with two
differences: the first N eval envs can be streamed to a viewer (tagged
``eval``), and the eval unroll compiles once (brax's compiles it twice: the
donated eval state it feeds back differs in weak types from the first one).
"""

from __future__ import annotations

import time
from typing import Any, Callable, Optional, Sequence, cast

from brax import envs
from brax.training import types
import jax
import numpy as np

from braxviewer.train import tap


class Evaluator:
  """Runs one batch of eval episodes per call and aggregates their metrics.

  Args:
    eval_env: the (training-wrapped) env to evaluate on.
    eval_policy_fn: maps policy params to a policy.
    num_eval_envs: parallel eval episodes.
    episode_length: max env steps per episode.
    action_repeat: physics steps per env step.
    key: PRNG key.
    num_view_envs: eval envs to stream (0: no tap compiled in).
    sink: host function receiving eval chunks (with ``num_view_envs``).
    info_keys: the ``state.info`` entries streamed in training; eval chunks
      carry those the eval env has.
  """

  def __init__(
    self,
    eval_env: envs.Env,
    eval_policy_fn: Callable[[Any], types.Policy],
    num_eval_envs: int,
    episode_length: int,
    action_repeat: int,
    key: types.PRNGKey,
    num_view_envs: int = 0,
    sink: Optional[tap.HostSink] = None,
    info_keys: Sequence[str] = (),
  ):
    self._key = key
    self._eval_walltime = 0.0
    kind = tap.pose_kind(eval_env)
    eval_env = envs.training.EvalWrapper(eval_env)
    view = min(num_view_envs, num_eval_envs) if sink is not None else 0

    def eval_unroll(policy_params, key, flag):
      reset_keys = jax.random.split(key, num_eval_envs)
      first_state = eval_env.reset(reset_keys)
      final_state, _, frames = tap.generate_unroll(
        eval_env,
        first_state,
        eval_policy_fn(policy_params),
        key,
        unroll_length=episode_length // action_repeat,
        num_view_envs=view,
        kind=kind,
        info_keys=tuple(info_keys),
        strict_info=False,
      )
      if view:  # so there is a sink, and frames of the view envs
        assert sink is not None and frames is not None
        tap.emit(flag, frames, sink)
      return final_state.info["eval_metrics"]

    self._eval_unroll = jax.jit(eval_unroll)
    self._steps_per_unroll = episode_length * num_eval_envs

  def run_evaluation(
    self,
    policy_params: Any,
    training_metrics: types.Metrics,
    aggregate_episodes: bool = True,
    flag: Any = 0,
  ) -> types.Metrics:
    """Run one eval; returns brax's eval metrics merged over training ones."""
    self._key, unroll_key = jax.random.split(self._key)
    t = time.time()
    eval_metrics = self._eval_unroll(policy_params, unroll_key, np.int32(flag))
    eval_metrics = jax.tree.map(np.asarray, eval_metrics)
    epoch_eval_time = time.time() - t
    episode_lengths = np.maximum(eval_metrics.episode_steps, 1.0).astype(float)

    metrics = {}
    for fn, suffix in ((np.mean, ""), (np.std, "_std")):
      for name, value in eval_metrics.episode_metrics.items():
        if aggregate_episodes:
          if name.endswith("per_step"):
            value = value / episode_lengths
          value = fn(value)
        metrics[f"eval/episode_{name}{suffix}"] = value
    metrics["eval/avg_episode_length"] = np.mean(eval_metrics.episode_steps)
    metrics["eval/std_episode_length"] = np.std(eval_metrics.episode_steps)
    metrics["eval/epoch_eval_time"] = epoch_eval_time
    metrics["eval/sps"] = self._steps_per_unroll / epoch_eval_time
    self._eval_walltime += epoch_eval_time
    # brax's Metrics holds arrays only; its own Evaluator also returns floats
    return cast(
      types.Metrics,
      {
        "eval/walltime": self._eval_walltime,
        **training_metrics,
        **metrics,
      },
    )
