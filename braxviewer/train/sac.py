"""Soft actor-critic, as brax trains it, with a viewer tap.

A drop-in for ``brax.training.agents.sac.train``: same parameters, defaults
and return value, plus ``viewer=``. Built on brax's public modules (losses,
networks, gradients, replay_buffers, running_statistics, checkpoint); the
same seed learns the same params as upstream, with or without a viewer.

SAC takes one env step (of every env) per training step. With a viewer, the
first N envs' frames of consecutive training steps are gathered on the
device into a ``(T, N, ...)`` buffer that outlives device calls; each time it
is full, ONE gated callback sends it (:data:`CHUNK_STEPS` frames, fewer when
an epoch holds fewer training steps). The mode flag is a runtime input, so
switching it recompiles nothing; while off nothing leaves the device.

What differs from upstream, on purpose (as in our PPO trainer):
- An epoch runs as one or more device calls of a dynamic number of training
  steps each (one compiled program), so a mode switch lands within ~1 s.
- Inputs are placed with the sharding the pmapped program returns, so it
  compiles once; ``jax.device_put`` replaces ``device_put_replicated``.
- Replay-buffer prefill steps (``min_replay_size``) are not streamed.
"""

from __future__ import annotations

import functools
import time
from typing import Any, Callable, Dict, Optional, Tuple, cast

from absl import logging
from brax import base, envs
from brax.training import acting, gradients, pmap, replay_buffers, types
from brax.training.acme import running_statistics, specs
from brax.training.agents.sac import checkpoint
from brax.training.agents.sac import losses as sac_losses
from brax.training.agents.sac import networks as sac_networks
from flax import struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from braxviewer.core.streamer import check_viewer
from braxviewer.scene.lookup import find_mj_model
from braxviewer.train import tap
from braxviewer.train.epoch_calls import EpochCalls
from braxviewer.train.evaluator import Evaluator
from braxviewer.train.ppo import (
  _first,
  _open_stream,
  _Placement,
  _resolve_view_envs,
  _strong,
)
from braxviewer.train.progress import ProgressBar

Metrics = types.Metrics
_AXIS = "i"
# Frames per streamed chunk: ~100 env steps, about as long as a PPO chunk
# (its unrolls of a training step; 80 frames in brax's usual configs).
CHUNK_STEPS = 100


@struct.dataclass
class TrainingState:
  """Learner state, replicated over devices (brax's SAC fields)."""

  policy_optimizer_state: optax.OptState
  policy_params: types.Params
  q_optimizer_state: optax.OptState
  q_params: types.Params
  target_q_params: types.Params
  gradient_steps: types.UInt64
  env_steps: types.UInt64
  alpha_optimizer_state: optax.OptState
  alpha_params: jax.Array  # log alpha
  normalizer_params: running_statistics.RunningStatisticsState


def _chunk_steps(steps_per_epoch: int) -> int:
  """T: frames per chunk; at least one chunk per epoch."""
  return max(1, min(CHUNK_STEPS, steps_per_epoch))


def train(
  environment: envs.Env,
  num_timesteps,
  episode_length: int,
  wrap_env: bool = True,
  wrap_env_fn: Optional[Callable[[Any], Any]] = None,
  action_repeat: int = 1,
  num_envs: int = 1,
  num_eval_envs: int = 128,
  learning_rate: float = 1e-4,
  discounting: float = 0.9,
  seed: int = 0,
  batch_size: int = 256,
  num_evals: int = 1,
  normalize_observations: bool = False,
  max_devices_per_host: Optional[int] = None,
  reward_scaling: float = 1.0,
  tau: float = 0.005,
  min_replay_size: int = 0,
  max_replay_size: Optional[int] = None,
  grad_updates_per_step: int = 1,
  deterministic_eval: bool = False,
  network_factory: types.NetworkFactory[
    sac_networks.SACNetworks
  ] = sac_networks.make_sac_networks,  # pyright: ignore[reportArgumentType]
  progress_fn: Callable[[int, Metrics], None] = lambda *args: None,
  eval_env: Optional[envs.Env] = None,
  randomization_fn: Optional[
    Callable[[base.System, jnp.ndarray], Tuple[base.System, base.System]]
  ] = None,
  checkpoint_logdir: Optional[str] = None,
  restore_checkpoint_path: Optional[str] = None,
  # braxviewer
  viewer: Optional[Any] = None,
  progress_bar: Optional[bool] = None,
):
  """SAC training; brax's parameters, plus a live viewer.

  All parameters but the last two mean exactly what they mean in
  ``brax.training.agents.sac.train.train``.

  Args:
    viewer: a braxviewer viewer (any ``TrainingViewer``). The first N
      training envs of device 0 are streamed in chunks of ``T`` consecutive
      env steps (:data:`CHUNK_STEPS`, at most the training steps of an
      epoch) while ``viewer.mode`` is ``live`` or ``sync``; eval rollouts
      too, tagged ``eval``. None streams nothing and compiles no tap.
    progress_bar: show a terminal progress bar; None shows one when stderr
      is a terminal.

  Returns:
    Tuple of (make_policy function, (normalizer params, policy params),
    metrics), as brax.
  """
  # ---- checks and sizes (nothing compiles) -------------------------------
  process_id = jax.process_index()
  process_count = jax.process_count()
  local_devices_to_use = jax.local_device_count()
  if max_devices_per_host is not None:
    local_devices_to_use = min(local_devices_to_use, max_devices_per_host)
  device_count = local_devices_to_use * process_count
  logging.info(
    "local_device_count: %s; total_device_count: %s",
    local_devices_to_use,
    device_count,
  )
  if min_replay_size >= num_timesteps:
    raise ValueError(
      "No training will happen because min_replay_size >= num_timesteps"
    )
  replay_size = int(
    num_timesteps if max_replay_size is None else max_replay_size
  )
  if num_envs % device_count != 0:
    raise ValueError(
      f"num_envs ({num_envs}) must be divisible by the number of devices"
      f" ({device_count})."
    )
  envs_per_device = num_envs // device_count

  env_steps_per_actor_step = action_repeat * num_envs
  num_prefill_actor_steps = -(-min_replay_size // num_envs)
  num_prefill_env_steps = num_prefill_actor_steps * env_steps_per_actor_step
  if num_timesteps < num_prefill_env_steps:
    raise ValueError(
      f"min_replay_size ({min_replay_size}) needs more env steps than"
      f" num_timesteps ({num_timesteps})."
    )
  num_evals_after_init = max(num_evals - 1, 1)
  num_training_steps_per_epoch = -(
    -(num_timesteps - num_prefill_env_steps)
    // (num_evals_after_init * env_steps_per_actor_step)
  )

  num_view_envs = 0
  if viewer is not None:
    viewer = check_viewer(viewer)
    num_view_envs = _resolve_view_envs(viewer, envs_per_device)
    if find_mj_model(environment) is None:
      raise ValueError(
        f"The environment {type(environment).__name__} exposes no MuJoCo"
        " model (env.sys.mj_model or env.mj_model), so braxviewer cannot"
        " show it. Use a brax or MuJoCo Playground env, or pass viewer=None."
      )
  streams = viewer is not None and process_id == 0

  # ---- keys and envs: upstream's schedule --------------------------------
  rng, key_randomize = jax.random.split(jax.random.PRNGKey(seed))
  env = environment
  wrap: Callable[..., Any] = (
    wrap_env_fn if wrap_env_fn is not None else envs.training.wrap
  )
  if wrap_env:
    if wrap_env_fn is None and not isinstance(env, envs.Env):
      raise ValueError(f"Unsupported environment type: {type(env)}")
    v_randomization_fn = None
    if randomization_fn is not None:
      v_randomization_fn = functools.partial(
        cast(Callable[..., Any], randomization_fn),
        rng=jax.random.split(
          key_randomize, num_envs // process_count // local_devices_to_use
        ),
      )
    env = wrap(
      env,
      episode_length=episode_length,
      action_repeat=action_repeat,
      randomization_fn=v_randomization_fn,
    )

  obs_size = env.observation_size
  if isinstance(obs_size, Dict):
    raise NotImplementedError("Dictionary observations not implemented in SAC")
  action_size = env.action_size

  def identity(observation, preprocessor_params):
    del preprocessor_params
    return observation

  normalize: Any = identity
  if normalize_observations:
    normalize = running_statistics.normalize
  sac_network = network_factory(
    observation_size=obs_size,
    action_size=action_size,
    preprocess_observations_fn=normalize,
  )
  make_policy = sac_networks.make_inference_fn(sac_network)

  # ---- optimizers, losses, replay buffer ---------------------------------
  alpha_optimizer = optax.adam(learning_rate=3e-4)
  policy_optimizer = optax.adam(learning_rate=learning_rate)
  q_optimizer = optax.adam(learning_rate=learning_rate)

  zeros_obs = jnp.zeros((obs_size,))
  sample = types.Transition(
    observation=zeros_obs,
    action=jnp.zeros((action_size,)),
    reward=0.0,  # pyright: ignore[reportArgumentType]
    discount=0.0,  # pyright: ignore[reportArgumentType]
    next_observation=zeros_obs,
    extras=cast(
      types.NestedArray,
      {"state_extras": {"truncation": 0.0}, "policy_extras": {}},
    ),
  )
  replay_buffer = replay_buffers.UniformSamplingQueue(
    max_replay_size=replay_size // device_count,
    dummy_data_sample=sample,
    sample_batch_size=batch_size * grad_updates_per_step // device_count,
  )
  alpha_loss, critic_loss, actor_loss = sac_losses.make_losses(
    sac_network=sac_network,
    reward_scaling=reward_scaling,
    discounting=discounting,
    action_size=action_size,
  )

  def update_fn(loss, optimizer):
    return gradients.gradient_update_fn(loss, optimizer, pmap_axis_name=_AXIS)

  alpha_update = update_fn(alpha_loss, alpha_optimizer)
  critic_update = update_fn(critic_loss, q_optimizer)
  actor_update = update_fn(actor_loss, policy_optimizer)

  # ---- the viewer stream (host side; NoStream without a viewer) ----------
  key_global, local_key = jax.random.split(rng)
  local_key = jax.random.fold_in(local_key, process_id)
  local_key, key_buffer, key_env, eval_key = jax.random.split(local_key, 4)
  devices = jax.local_devices()[:local_devices_to_use]
  place = _Placement(devices)
  key_envs = jax.random.split(key_env, num_envs // process_count)
  key_envs = jnp.reshape(
    key_envs, (local_devices_to_use, -1) + key_envs.shape[1:]
  )
  env_state = jax.pmap(env.reset)(place.shard(key_envs))

  kind = tap.pose_kind(env)
  chunk_steps = _chunk_steps(num_training_steps_per_epoch)
  stream = _open_stream(
    viewer if streams else None,
    env,
    env_state,
    kind,
    num_view_envs=num_view_envs,
    num_envs=num_envs,
    envs_per_device=envs_per_device,
    chunk_length=chunk_steps,
    # Chunks are tagged with the env steps of their last frame, sent along.
    steps_per_chunk=0,
  )

  # ---- one training step --------------------------------------------------
  def sgd_step(carry, transitions):
    ts, key = carry
    key, key_alpha, key_critic, key_actor = jax.random.split(key, 4)
    a_loss, alpha_params, alpha_opt = alpha_update(
      ts.alpha_params,
      ts.policy_params,
      ts.normalizer_params,
      transitions,
      key_alpha,
      optimizer_state=ts.alpha_optimizer_state,
    )
    alpha = jnp.exp(ts.alpha_params)  # the alpha before this update
    c_loss, q_params, q_opt = critic_update(
      ts.q_params,
      ts.policy_params,
      ts.normalizer_params,
      ts.target_q_params,
      alpha,
      transitions,
      key_critic,
      optimizer_state=ts.q_optimizer_state,
    )
    p_loss, policy_params, policy_opt = actor_update(
      ts.policy_params,
      ts.normalizer_params,
      ts.q_params,
      alpha,
      transitions,
      key_actor,
      optimizer_state=ts.policy_optimizer_state,
    )
    target_q_params = jax.tree.map(
      lambda old, new: old * (1 - tau) + new * tau, ts.target_q_params, q_params
    )
    ts = ts.replace(
      policy_optimizer_state=policy_opt,
      policy_params=policy_params,
      q_optimizer_state=q_opt,
      q_params=q_params,
      target_q_params=target_q_params,
      gradient_steps=ts.gradient_steps + 1,
      alpha_optimizer_state=alpha_opt,
      alpha_params=alpha_params,
    )
    metrics = {
      "critic_loss": c_loss,
      "actor_loss": p_loss,
      "alpha_loss": a_loss,
      "alpha": jnp.exp(cast(jax.Array, alpha_params)),
    }
    return (ts, key), metrics

  def act(ts, env_state, buffer_state, key):
    """One env step of every env into the replay buffer."""
    policy = make_policy((ts.normalizer_params, ts.policy_params))
    env_state, transitions = acting.actor_step(
      env, env_state, policy, key, extra_fields=("truncation",)
    )
    ts = ts.replace(
      normalizer_params=running_statistics.update(
        ts.normalizer_params, transitions.observation, pmap_axis_name=_AXIS
      ),
      env_steps=ts.env_steps + env_steps_per_actor_step,
    )
    return ts, env_state, replay_buffer.insert(buffer_state, transitions)

  def training_step(ts, env_state, buffer_state, key):
    key_act, key_learn = jax.random.split(key)
    ts, env_state, buffer_state = act(ts, env_state, buffer_state, key_act)
    buffer_state, transitions = replay_buffer.sample(buffer_state)
    transitions = jax.tree.map(
      lambda x: jnp.reshape(x, (grad_updates_per_step, -1) + x.shape[1:]),
      transitions,
    )
    (ts, _), metrics = jax.lax.scan(sgd_step, (ts, key_learn), transitions)
    metrics["buffer_current_size"] = replay_buffer.size(buffer_state)
    return ts, env_state, buffer_state, metrics

  # ---- the chunk the tap fills (a (T, N, ...) buffer on each device) ------
  def write_frame(chunk, env_state):
    """This step's frame into the buffer (no callback: the per-step loop
    stays free of side effects, which would slow it down)."""
    frames, filled = chunk
    frame = tap.select_frame(
      env_state, num_view_envs, kind, info_keys=stream.info_keys
    )
    frames = jax.tree.map(lambda b, f: b.at[filled].set(f), frames, frame)
    return frames, filled + 1

  def send_if_full(chunk, ts, flag):
    """One gated callback when the buffer is full; then it starts over."""
    frames, filled = chunk
    full = filled == chunk_steps
    assert stream.train_sink is not None  # a tapped stream has its sinks
    tap.emit(
      full.astype(jnp.int32) * flag,
      frames,
      stream.train_sink,
      ts.env_steps.hi,
      ts.env_steps.lo,
      axis_name=_AXIS,
    )
    return frames, jnp.where(full, 0, filled)

  # ---- a device call: a dynamic number of training steps -----------------
  def training_steps(ts, env_state, buffer_state, key, chunk, flag, n):
    shapes = jax.eval_shape(
      lambda *args: training_step(*args)[3],
      ts,
      env_state,
      buffer_state,
      key,
    )
    zeros = jax.tree.map(lambda x: jnp.zeros((), jnp.float32), shapes)

    def body(_, carry):
      ts, env_state, buffer_state, key, chunk, sums = carry
      key, next_key = jax.random.split(key)
      ts, env_state, buffer_state, metrics = training_step(
        ts, env_state, buffer_state, key
      )
      if stream.tapped:
        chunk = write_frame(chunk, env_state)
      sums = jax.tree.map(lambda s, m: s + jnp.mean(m), sums, metrics)
      return ts, env_state, buffer_state, next_key, chunk, sums

    carry = (ts, env_state, buffer_state, key, chunk, zeros)
    if not stream.tapped:
      carry = jax.lax.fori_loop(0, n, body, carry)
    else:
      # Segments of steps up to the next full buffer, each then sent.
      def segment(state):
        done, carry = state
        steps = jnp.minimum(chunk_steps - carry[4][1], n - done)
        carry = jax.lax.fori_loop(0, steps, body, carry)
        chunk = send_if_full(carry[4], carry[0], flag)
        return done + steps, carry[:4] + (chunk,) + carry[5:]

      _, carry = jax.lax.while_loop(
        lambda state: state[0] < n, segment, (jnp.int32(0), carry)
      )
    ts, env_state, buffer_state, key, chunk, sums = carry
    # Weakly typed outputs would compile the program again when re-fed.
    return (
      _strong(ts),
      _strong(env_state),
      _strong(buffer_state),
      key,
      chunk,
      sums,
    )

  training_steps = jax.pmap(
    training_steps,
    axis_name=_AXIS,
    in_axes=(0, 0, 0, 0, 0, None, None),
    donate_argnums=(0, 1, 2, 4),
  )

  def prefill(ts, env_state, buffer_state, key):
    def body(carry, _):
      ts, env_state, buffer_state, key = carry
      key, next_key = jax.random.split(key)
      ts, env_state, buffer_state = act(ts, env_state, buffer_state, key)
      return (ts, _strong(env_state), buffer_state, next_key), ()

    carry, _ = jax.lax.scan(
      body,
      (ts, env_state, buffer_state, key),
      (),
      length=num_prefill_actor_steps,
    )
    return _strong(carry[:3])

  prefill = jax.pmap(prefill, axis_name=_AXIS, donate_argnums=(0, 1, 2))

  # ---- initial state ------------------------------------------------------
  key_policy, key_q = jax.random.split(key_global)
  log_alpha = jnp.asarray(0.0, dtype=jnp.float32)
  policy_params = sac_network.policy_network.init(key_policy)
  q_params = sac_network.q_network.init(key_q)
  training_state = TrainingState(
    policy_optimizer_state=policy_optimizer.init(policy_params),
    policy_params=policy_params,
    q_optimizer_state=q_optimizer.init(q_params),
    q_params=q_params,
    target_q_params=q_params,
    gradient_steps=types.UInt64(hi=0, lo=0),  # pyright: ignore[reportCallIssue]
    env_steps=types.UInt64(hi=0, lo=0),  # pyright: ignore[reportCallIssue]
    alpha_optimizer_state=alpha_optimizer.init(log_alpha),
    alpha_params=log_alpha,
    normalizer_params=running_statistics.init_state(
      specs.Array((cast(int, obs_size),), jnp.dtype("float32"))
    ),
  )
  if restore_checkpoint_path is not None:
    saved = checkpoint.load(restore_checkpoint_path)
    training_state = training_state.replace(  # pyright: ignore[reportAttributeAccessIssue]
      normalizer_params=saved[0], policy_params=saved[1]
    )
  training_state = place.replicate(_strong(training_state))
  env_state = place.shard(_strong(env_state))
  buffer_state = jax.pmap(replay_buffer.init)(
    place.shard(jax.random.split(key_buffer, local_devices_to_use))
  )
  buffer_state = place.shard(_strong(buffer_state))
  chunk: Any = None
  if stream.tapped:
    frame = jax.eval_shape(
      lambda s: tap.select_frame(
        s, num_view_envs, kind, info_keys=stream.info_keys
      ),
      jax.tree.map(lambda x: x[0], env_state),
    )
    frames = jax.tree.map(
      lambda x: np.zeros(
        (local_devices_to_use, chunk_steps) + x.shape, x.dtype
      ),
      frame,
    )
    filled = np.zeros((local_devices_to_use,), np.int32)
    chunk = place.shard((frames, filled))

  # ---- eval ---------------------------------------------------------------
  eval_base: Any = eval_env or environment
  if wrap_env:
    eval_randomization_fn = None
    if randomization_fn is not None:
      eval_randomization_fn = functools.partial(
        cast(Callable[..., Any], randomization_fn),
        rng=jax.random.split(eval_key, num_eval_envs),
      )
    eval_base = wrap(
      eval_base,
      episode_length=episode_length,
      action_repeat=action_repeat,
      randomization_fn=eval_randomization_fn,
    )
  evaluator = Evaluator(
    eval_base,
    functools.partial(make_policy, deterministic=deterministic_eval),
    num_eval_envs=num_eval_envs,
    episode_length=episode_length,
    action_repeat=action_repeat,
    key=eval_key,
    num_view_envs=num_view_envs,
    sink=stream.eval_sink,
    info_keys=stream.info_keys,
  )

  def current_params():
    return _first(
      (training_state.normalizer_params, training_state.policy_params)
    )

  def report(step, metrics):
    progress_fn(step, metrics)
    stream.progress(step, metrics)

  total_steps = (
    num_prefill_env_steps
    + num_evals_after_init
    * num_training_steps_per_epoch
    * env_steps_per_actor_step
  )
  bar = ProgressBar(total_steps, enabled=progress_bar)
  epochs = EpochCalls(
    stream,
    num_training_steps_per_epoch,
    env_steps_per_actor_step,
    bar,
  )
  phase = epochs.phase  # what the run does now: on the bar and the page
  training_walltime = 0.0
  current_step = 0
  metrics: Metrics = {}

  def run_epoch(key):
    nonlocal training_state, env_state, buffer_state, chunk, training_walltime
    keys = place.shard(jax.random.split(key, local_devices_to_use))

    def dispatch(flag, n):
      nonlocal training_state, env_state, buffer_state, keys, chunk
      training_state, env_state, buffer_state, keys, chunk, sums = (
        training_steps(
          training_state,
          env_state,
          buffer_state,
          keys,
          chunk,
          flag,
          np.int32(n),
        )
      )
      return sums

    sums, epoch_time = epochs.run(dispatch, current_step)
    training_walltime += epoch_time
    sps = env_steps_per_actor_step * num_training_steps_per_epoch / epoch_time
    return {
      "training/sps": sps,
      "training/walltime": training_walltime,
      **{
        f"training/{k}": v / num_training_steps_per_epoch
        for k, v in sums.items()
      },
    }

  stream.start()
  phase("compiling")
  try:
    if process_id == 0 and num_evals > 1:
      metrics = evaluator.run_evaluation(
        current_params(), training_metrics={}, flag=stream.flag()
      )
      logging.info(metrics)
      report(0, metrics)

    t = time.time()
    prefill_key, local_key = jax.random.split(local_key)
    if num_prefill_actor_steps > 0:
      training_state, env_state, buffer_state = prefill(
        training_state,
        env_state,
        buffer_state,
        place.shard(jax.random.split(prefill_key, local_devices_to_use)),
      )
    training_walltime = time.time() - t
    current_step = int(_first(training_state.env_steps))

    for _ in range(num_evals_after_init):
      logging.info("step %s", current_step)
      epoch_key, local_key = jax.random.split(local_key)
      training_metrics = run_epoch(epoch_key)
      current_step = int(_first(training_state.env_steps))
      if process_id != 0:
        continue
      if checkpoint_logdir:
        ckpt_config = checkpoint.network_config(
          observation_size=obs_size,
          action_size=env.action_size,
          normalize_observations=normalize_observations,
          network_factory=network_factory,
        )
        checkpoint.save(
          checkpoint_logdir, current_step, current_params(), ckpt_config
        )
      stream.eval_env_steps = current_step
      phase("evaluating")
      metrics = evaluator.run_evaluation(
        current_params(), training_metrics, flag=stream.flag()
      )
      phase("training")
      logging.info(metrics)
      report(current_step, metrics)
    phase("done")
  finally:
    bar.close()
    stream.end()

  if current_step < num_timesteps:
    raise AssertionError(
      f"Total steps {current_step} is less than `num_timesteps`="
      f" {num_timesteps}."
    )
  params = current_params()
  pmap.assert_is_replicated(training_state)
  logging.info("total steps: %s", current_step)
  pmap.synchronize_hosts()
  return (make_policy, params, metrics)
