"""Proximal policy optimization, as brax trains it, with a viewer tap.

A drop-in for ``brax.training.agents.ppo.train``: same parameters, defaults
and return value, plus ``viewer=``. Built on brax's public modules (losses,
networks, gradients, running_statistics, checkpoint, logger); the same seed
learns the same params as upstream, with or without a viewer.

What differs from upstream, on purpose:
- A training epoch runs as one or more device calls of a dynamic number of
  training steps each (one compiled program), so a mode switch from the
  viewer takes effect within about a second.
- Inputs are placed with the sharding the pmapped epoch returns, so the epoch
  compiles once (upstream compiles it twice); the eval unroll compiles once.
- ``jax.device_put`` instead of the removed ``jax.device_put_replicated``.
- Under ``jax.distributed`` (jax 0.9, where a pmap's outputs span every
  process's devices) the final replication check reads this process's
  shard and the final barrier is ``multihost_utils.sync_global_devices``:
  brax's ``pmap.assert_is_replicated`` and ``synchronize_hosts`` fail there.
"""

from __future__ import annotations

import functools
import time
from typing import Any, Callable, Mapping, Optional, Tuple, Union, cast

from absl import logging
from brax import base, envs
from brax.training import gradients, pmap, types
from brax.training import logger as metric_logger
from brax.training.acme import running_statistics, specs
from brax.training.agents.ppo import checkpoint
from brax.training.agents.ppo import losses as ppo_losses
from brax.training.agents.ppo import networks as ppo_networks
from brax.training.agents.ppo import optimizer as ppo_optimizer
from flax import struct
import jax
from jax.experimental import multihost_utils
import jax.numpy as jnp
import numpy as np
import optax

from braxviewer.core.frames import PoseKind
from braxviewer.core.protocol import StreamInfo, check_info_keys, check_num_envs
from braxviewer.core.streamer import NoStream, Streamer, check_viewer
from braxviewer.scene.lookup import find_mj_model
from braxviewer.train import tap
from braxviewer.train.epoch_calls import EpochCalls
from braxviewer.train.evaluator import Evaluator
from braxviewer.train.progress import ProgressBar

Metrics = types.Metrics
_AXIS = "i"
_DEFAULT_VIEW_ENVS = 16


@struct.dataclass
class TrainingState:
  """Learner state, replicated over devices."""

  optimizer_state: optax.OptState
  params: ppo_losses.PPONetworkParams
  normalizer_params: running_statistics.RunningStatisticsState
  env_steps: types.UInt64


# --------------------------------------------------------------------------
# Helpers (placement, weak types, pixels)
# --------------------------------------------------------------------------


def _strong(tree):
  """Drop weak types so a re-fed output never triggers a recompile."""
  return jax.tree.map(
    lambda x: jnp.asarray(x).astype(jnp.asarray(x).dtype), tree
  )


class _Placement:
  """Puts host values on the devices the way the pmapped epoch returns them."""

  def __init__(self, devices):
    self.devices = list(devices)
    mesh = jax.sharding.Mesh(np.array(self.devices), (_AXIS,))
    self.sharding = jax.sharding.NamedSharding(
      mesh, jax.sharding.PartitionSpec(_AXIS)
    )

  def shard(self, tree):
    """Leading axis = devices."""
    return jax.device_put(tree, self.sharding)

  def replicate(self, tree):
    n = len(self.devices)
    stacked = jax.tree.map(
      lambda x: np.broadcast_to(np.asarray(x), (n,) + np.shape(x)), tree
    )
    return self.shard(stacked)


def _first(tree):
  """The copy on the first device, without a cross-device gather."""
  return jax.tree.map(lambda x: x.addressable_shards[0].data.squeeze(0), tree)


def _assert_replicated(tree) -> None:
  """brax's ``pmap.assert_is_replicated``, with the answer read off this
  process's first device (under ``jax.distributed`` a pmap's output spans
  devices of other processes, which brax's ``[0]`` cannot read)."""
  check = functools.partial(pmap.is_replicated, axis_name=_AXIS)
  assert bool(_first(jax.pmap(check, axis_name=_AXIS)(tree)))


def _synchronize_hosts() -> None:
  """brax's ``pmap.synchronize_hosts`` (every process stays up until all
  are done), as a barrier that runs under ``jax.distributed``."""
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices("braxviewer ppo.train end")


def _remove_pixels(obs):
  if not isinstance(obs, Mapping):
    return obs
  return {k: v for k, v in obs.items() if not k.startswith("pixels/")}


def _shift_pixels(obs: Mapping[str, jax.Array], key) -> Mapping[str, jax.Array]:
  """Random translation (up to 4 px, edge padded) of ``pixels/*`` views,
  the same shift over the unroll axis of each sample."""
  pad = 4

  def one_sample(sample, key):
    out = dict(sample)
    for name, img in sample.items():
      if not name.startswith("pixels/"):
        continue
      key, key_shift = jax.random.split(key)
      start = jax.random.randint(key_shift, (2,), 0, 2 * pad + 1)
      start = jnp.concatenate(
        [jnp.zeros((1,), jnp.int32), start, jnp.zeros((1,), jnp.int32)]
      )
      padded = jnp.pad(
        img, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge"
      )
      out[name] = jax.lax.dynamic_slice(padded, start, img.shape)
    return out

  batch = next(iter(obs.values())).shape[0]
  return jax.vmap(one_sample)(obs, jax.random.split(key, batch))


def _wrap_env(
  env,
  wrap_env,
  num_envs,
  episode_length,
  action_repeat,
  device_count,
  key_env,
  wrap_env_fn,
  randomization_fn,
):
  """Training wrappers, as upstream applies them."""
  if not wrap_env:
    return env
  if episode_length is None:
    raise ValueError("episode_length must be specified in ppo.train")
  v_randomization_fn = None
  if randomization_fn is not None:
    # Every device gets the same randomization keys.
    rng = jax.random.split(key_env, num_envs // device_count)
    v_randomization_fn = functools.partial(randomization_fn, rng=rng)
  wrap = wrap_env_fn if wrap_env_fn is not None else envs.training.wrap
  return wrap(
    env,
    episode_length=episode_length,
    action_repeat=action_repeat,
    randomization_fn=v_randomization_fn,
  )


# --------------------------------------------------------------------------
# Viewer set-up (all checks run before anything compiles)
# --------------------------------------------------------------------------


def _resolve_view_envs(viewer, envs_per_device: int) -> int:
  asked = viewer.requested_envs()
  try:
    requested = check_num_envs(asked, "requested_envs()")
  except ValueError as err:
    raise ValueError(f"The viewer asks for {asked!r} envs: {err}") from None
  if requested is None:
    return min(_DEFAULT_VIEW_ENVS, envs_per_device)
  if requested > envs_per_device:
    raise ValueError(
      f"The viewer asks for {requested} envs, but each device trains only"
      f" {envs_per_device} (num_envs / device count). Stream at most"
      f" {envs_per_device} envs or train with more."
    )
  return requested


def _open_stream(
  viewer,
  env,
  env_state,
  kind: PoseKind,
  *,
  num_view_envs: int,
  num_envs: int,
  envs_per_device: int,
  chunk_length: int,
  steps_per_chunk: int,
  process_index: int = 0,
  process_count: int = 1,
  local_devices: int = 1,
) -> Union[Streamer, NoStream]:
  """The host side of the tap; what one env streams is read off its state
  (the ``state.info`` entries: the viewer's ``info_keys``, else chosen).
  The layout (this process, processes, devices per process) is what the
  viewer's ``stream_source`` chooses from; the defaults allow only device 0
  of process 0."""
  if viewer is None:
    return NoStream()
  asked = check_info_keys(
    getattr(viewer, "info_keys", None), "viewer.info_keys"
  )
  # One device's state, abstract: under jax.distributed the state spans
  # devices this process cannot address.
  spec = tap.describe(
    jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape[1:], x.dtype), env_state
    ),
    kind,
    info_keys=asked,
  )
  info = StreamInfo(
    num_envs=num_view_envs,
    num_train_envs=num_envs,
    envs_per_device=envs_per_device,
    kind=kind,
    nq=spec.nq,
    num_links=spec.num_links,
    dt=float(getattr(env, "dt", 0.0) or 0.0),
    chunk_length=chunk_length,
    reward_terms=spec.reward_terms,
    backend=getattr(env, "backend", None),
    nmocap=spec.nmocap,
    info_keys=spec.info_keys,
    info_shapes=spec.info_shapes,
    process_count=process_count,
    local_devices=local_devices,
  )
  return Streamer(
    viewer, info, steps_per_chunk=steps_per_chunk, process_index=process_index
  )


# --------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------


def train(
  environment: envs.Env,
  num_timesteps: int,
  max_devices_per_host: Optional[int] = None,
  # high-level control flow
  wrap_env: bool = True,
  vision: bool = False,
  augment_pixels: bool = False,
  # environment wrapper
  num_envs: int = 1,
  episode_length: Optional[int] = None,
  action_repeat: int = 1,
  wrap_env_fn: Optional[Callable[[Any], Any]] = None,
  randomization_fn: Optional[
    Callable[[base.System, jnp.ndarray], Tuple[base.System, base.System]]
  ] = None,
  # ppo params
  learning_rate: float = 1e-4,
  entropy_cost: float = 1e-4,
  discounting: float = 0.9,
  unroll_length: int = 10,
  batch_size: int = 32,
  num_minibatches: int = 16,
  num_updates_per_batch: int = 2,
  num_resets_per_eval: int = 0,
  normalize_observations: bool = False,
  normalize_observations_std_eps: float = 0.0,
  normalize_observations_mode: str = "welford",
  normalize_until_count: Optional[int] = None,
  reward_scaling: float = 1.0,
  clipping_epsilon: float = 0.3,
  clipping_epsilon_value: float | None = None,
  gae_lambda: float = 0.95,
  max_grad_norm: Optional[float] = None,
  normalize_advantage: bool = True,
  vf_loss_coefficient: float = 0.5,
  bootstrap_on_timeout: bool = False,
  use_distributional_critic: bool = False,
  desired_kl: float = 0.01,
  learning_rate_schedule: Optional[Union[str, ppo_optimizer.LRSchedule]] = None,
  learning_rate_schedule_min_lr: float = 1e-5,
  learning_rate_schedule_max_lr: float = 1e-2,
  network_factory: types.NetworkFactory[
    ppo_networks.PPONetworks
  ] = ppo_networks.make_ppo_networks,
  seed: int = 0,
  use_pmap_on_reset: bool = True,
  # eval
  num_evals: int = 1,
  eval_env: Optional[envs.Env] = None,
  num_eval_envs: int = 128,
  deterministic_eval: bool = False,
  # training metrics
  log_training_metrics: bool = False,
  training_metrics_steps: Optional[int] = None,
  # callbacks
  progress_fn: Callable[[int, Metrics], None] = lambda *args: None,
  policy_params_fn: Callable[..., None] = lambda *args: None,
  # checkpointing
  save_checkpoint_path: Optional[str] = None,
  restore_checkpoint_path: Optional[str] = None,
  restore_params: Optional[Any] = None,
  restore_value_fn: bool = True,
  run_evals: bool = True,
  # braxviewer
  viewer: Optional[Any] = None,
  progress_bar: Optional[bool] = None,
):
  """PPO training; brax's parameters, plus a live viewer.

  All parameters but the last two mean exactly what they mean in
  ``brax.training.agents.ppo.train.train``.

  Args:
    viewer: a braxviewer viewer (``WebViewer``, ``WebViewerBatched``,
      ``HeadlessViewer`` or any ``braxviewer.core.protocol.TrainingViewer``). The
      first N training envs of one device (N = ``viewer.requested_envs()``,
      default min(16, envs per device); the device: ``viewer.stream_source``,
      ``(process, local device)``, default ``(0, 0)``, switchable at run
      time) are streamed once per training step while ``viewer.mode`` is
      ``live`` or ``sync``; eval rollouts too (run by process 0, so streamed
      while process 0 is chosen), tagged ``eval``. Chunks carry the mocap bodies' state and the
      ``state.info`` entries ``viewer.info_keys`` (None: a few numeric
      ones, ``command`` first). None streams nothing and compiles no tap.
    progress_bar: show a terminal progress bar; None shows one when stderr
      is a terminal.

  Returns:
    Tuple of (make_policy function, network params, metrics), as brax.
  """
  # ---- checks that need no compile ---------------------------------------
  if num_envs < 1:
    raise ValueError(f"num_envs must be >= 1, got {num_envs}.")
  if batch_size * num_minibatches % num_envs != 0:
    raise ValueError(
      f"batch_size * num_minibatches ({batch_size} * {num_minibatches}) must"
      f" be divisible by num_envs ({num_envs})."
    )
  if vision and action_repeat != 1:
    raise ValueError(
      "Implement action_repeat using PipelineEnv's _n_frames to avoid"
      " unnecessary rendering!"
    )
  if use_distributional_critic and clipping_epsilon_value is None:
    raise AssertionError(
      "clipping_epsilon_value must not be None when "
      "use_distributional_critic=True (it serves as kappa for quantile "
      "Huber loss)"
    )

  xt = time.time()
  process_count = jax.process_count()
  process_id = jax.process_index()
  local_devices_to_use = jax.local_device_count()
  if max_devices_per_host:
    local_devices_to_use = min(local_devices_to_use, max_devices_per_host)
  device_count = local_devices_to_use * process_count
  logging.info(
    "Device count: %d, process count: %d (id %d), devices to use: %d",
    jax.device_count(),
    process_count,
    process_id,
    local_devices_to_use,
  )
  if num_envs % device_count != 0:
    raise ValueError(
      f"num_envs ({num_envs}) must be divisible by the number of devices"
      f" ({device_count})."
    )
  envs_per_device = num_envs // device_count

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

  env_step_per_training_step = (
    batch_size * unroll_length * num_minibatches * action_repeat
  )
  num_evals_after_init = max(num_evals - 1, 1)
  num_training_steps_per_epoch = int(
    np.ceil(
      num_timesteps
      / (
        num_evals_after_init
        * env_step_per_training_step
        * max(num_resets_per_eval, 1)
      )
    )
  )
  num_unrolls = batch_size * num_minibatches // num_envs

  # ---- keys: the same schedule as upstream -------------------------------
  key = jax.random.PRNGKey(seed)
  global_key, local_key = jax.random.split(key)
  local_key = jax.random.fold_in(local_key, process_id)
  local_key, key_env, eval_key = jax.random.split(local_key, 3)
  key_policy, key_value = jax.random.split(global_key)

  env = _wrap_env(
    environment,
    wrap_env,
    num_envs,
    episode_length,
    action_repeat,
    device_count,
    key_env,
    wrap_env_fn,
    randomization_fn,
  )
  devices = jax.local_devices()[:local_devices_to_use]
  place = _Placement(devices)

  def reset_donated(env_state_donated, key_envs):
    del env_state_donated
    return env.reset(key_envs)

  key_envs = jax.random.split(key_env, num_envs // process_count)
  key_envs = jnp.reshape(
    key_envs, (local_devices_to_use, -1) + key_envs.shape[1:]
  )
  if local_devices_to_use > 1 or use_pmap_on_reset:
    env_state = jax.pmap(env.reset, axis_name=_AXIS)(place.shard(key_envs))
    reset_fn = jax.pmap(reset_donated, axis_name=_AXIS, donate_argnums=(0,))
  else:
    env_state = jax.jit(jax.vmap(env.reset))(key_envs)
    reset_fn = jax.jit(reset_donated, donate_argnums=(0,), keep_unused=True)

  obs_shape = jax.tree.map(lambda x: x.shape[2:], env_state.obs)

  def identity(observation, preprocessor_params):
    del preprocessor_params
    return observation

  normalize: types.PreprocessObservationFn = identity
  if normalize_observations:
    # It is the preprocessor brax made it for, but brax types it for nested
    # arrays (under other parameter names) rather than as one.
    normalize = cast(
      types.PreprocessObservationFn, running_statistics.normalize
    )
  ppo_network = network_factory(
    obs_shape, env.action_size, preprocess_observations_fn=normalize
  )
  make_policy = ppo_networks.make_inference_fn(
    ppo_network,
    compute_value=bootstrap_on_timeout or clipping_epsilon_value is not None,
    use_distributional_critic=use_distributional_critic,
  )

  # ---- optimizer and loss ------------------------------------------------
  lr_schedule = ppo_optimizer.LRSchedule(
    learning_rate_schedule or ppo_optimizer.LRSchedule.NONE
  )
  adaptive_kl = lr_schedule == ppo_optimizer.LRSchedule.ADAPTIVE_KL
  if adaptive_kl:
    base_optimizer = optax.inject_hyperparams(optax.adam)(
      learning_rate=learning_rate
    )
  else:
    base_optimizer = optax.adam(learning_rate=learning_rate)
  optimizer = base_optimizer
  if max_grad_norm is not None:
    optimizer = optax.chain(
      optax.clip_by_global_norm(max_grad_norm), base_optimizer
    )

  loss_fn = functools.partial(
    ppo_losses.compute_ppo_loss,
    ppo_network=ppo_network,
    entropy_cost=entropy_cost,
    discounting=discounting,
    reward_scaling=reward_scaling,
    gae_lambda=gae_lambda,
    clipping_epsilon=clipping_epsilon,
    normalize_advantage=normalize_advantage,
    vf_coefficient=vf_loss_coefficient,
    clipping_epsilon_value=clipping_epsilon_value,
    use_distributional_critic=use_distributional_critic,
  )
  loss_and_pgrad_fn = gradients.loss_and_pgrad(
    # brax types loss_fn as returning a float, also with has_aux=True
    loss_fn,  # pyright: ignore[reportArgumentType]
    pmap_axis_name=_AXIS,
    has_aux=True,
  )
  metrics_aggregator = metric_logger.EpisodeMetricsLogger(
    steps_between_logging=training_metrics_steps or env_step_per_training_step,
    progress_fn=lambda step, metrics: report(step, metrics),
  )

  # ---- the viewer stream (host side; NoStream without a viewer) ----------
  kind = tap.pose_kind(env)
  # Every process with a viewer compiles the same tap; the flag lets only
  # the chosen process (and device) send.
  stream = _open_stream(
    viewer,
    env,
    env_state,
    kind,
    num_view_envs=num_view_envs,
    num_envs=num_envs,
    envs_per_device=envs_per_device,
    chunk_length=num_unrolls * unroll_length,
    steps_per_chunk=env_step_per_training_step,
    process_index=process_id,
    process_count=process_count,
    local_devices=local_devices_to_use,
  )

  # ---- one training step --------------------------------------------------
  def minibatch_step(carry, data, normalizer_params):
    optimizer_state, params, key = carry
    key, key_loss = jax.random.split(key)
    (_, metrics), grads = loss_and_pgrad_fn(
      params, normalizer_params, data, key_loss
    )
    if adaptive_kl:
      kl_mean = jax.lax.pmean(metrics["kl_mean"], axis_name=_AXIS)
      optimizer_state, lr = ppo_optimizer.adaptive_kl_learning_rate(
        optimizer_state,
        kl_mean,
        desired_kl,
        min_learning_rate=learning_rate_schedule_min_lr,
        max_learning_rate=learning_rate_schedule_max_lr,
      )
    else:
      lr = jnp.array(learning_rate)
    metrics["learning_rate"] = lr
    updates, optimizer_state = optimizer.update(grads, optimizer_state)
    # optax types its result as an array tree; it has the structure of params.
    params = cast(
      ppo_losses.PPONetworkParams, optax.apply_updates(params, updates)
    )
    return (optimizer_state, params, key), metrics

  def sgd_step(carry, unused_t, data, normalizer_params):
    optimizer_state, params, key = carry
    key, key_perm, key_grad = jax.random.split(key, 3)
    if augment_pixels:
      key, key_rt = jax.random.split(key)
      data = data._replace(
        observation=_shift_pixels(data.observation, key_rt),
        next_observation=_shift_pixels(data.next_observation, key_rt),
      )

    def to_minibatches(x):
      x = jax.random.permutation(key_perm, x)
      return jnp.reshape(x, (num_minibatches, -1) + x.shape[1:])

    (optimizer_state, params, _), metrics = jax.lax.scan(
      functools.partial(minibatch_step, normalizer_params=normalizer_params),
      (optimizer_state, params, key_grad),
      jax.tree.map(to_minibatches, data),
      length=num_minibatches,
    )
    return (optimizer_state, params, key), metrics

  extra_fields = ("truncation", "episode_metrics", "episode_done") + (
    ("time_out",) if bootstrap_on_timeout else ()
  )

  def training_step(carry, flag):
    training_state, state, key = carry
    key_sgd, key_generate_unroll, new_key = jax.random.split(key, 3)
    policy = make_policy(
      (
        training_state.normalizer_params,
        training_state.params.policy,
        training_state.params.value,
      )
    )

    def one_unroll(carry, unused_t):
      current_state, current_key = carry
      current_key, next_key = jax.random.split(current_key)
      next_state, data, frames = tap.generate_unroll(
        env,
        current_state,
        policy,
        current_key,
        unroll_length,
        extra_fields=extra_fields,
        num_view_envs=num_view_envs if stream.tapped else 0,
        kind=kind,
        info_keys=stream.info_keys,
      )
      return (next_state, next_key), (data, frames)

    (state, _), (data, frames) = jax.lax.scan(
      one_unroll, (state, key_generate_unroll), (), length=num_unrolls
    )
    if stream.tapped:
      assert stream.train_sink is not None  # a tapped stream has its sinks
      # The unrolls of a step continue each other: one chunk, one callback.
      frames = jax.tree.map(
        lambda x: jnp.reshape(x, (-1,) + x.shape[2:]), frames
      )
      tap.emit(
        flag,
        frames,
        stream.train_sink,
        training_state.env_steps.hi,
        training_state.env_steps.lo,
        axis_name=_AXIS,
      )
    # Leading dims (batch_size * num_minibatches, unroll_length).
    data = jax.tree.map(lambda x: jnp.swapaxes(x, 1, 2), data)
    data = jax.tree.map(lambda x: jnp.reshape(x, (-1,) + x.shape[2:]), data)

    if bootstrap_on_timeout:
      time_out = data.extras["state_extras"]["time_out"]
      value = data.extras["policy_extras"]["value"]
      data = data._replace(reward=data.reward + discounting * time_out * value)

    def update_normalizer(normalizer_params):
      return running_statistics.update(
        normalizer_params,
        _remove_pixels(data.observation),
        pmap_axis_name=_AXIS,
        until_count=normalize_until_count,
      )

    normalizer_params = training_state.normalizer_params
    if not adaptive_kl:  # before SGD, as upstream
      normalizer_params = update_normalizer(normalizer_params)
    (optimizer_state, params, _), metrics = jax.lax.scan(
      functools.partial(
        sgd_step, data=data, normalizer_params=normalizer_params
      ),
      (training_state.optimizer_state, training_state.params, key_sgd),
      (),
      length=num_updates_per_batch,
    )
    if adaptive_kl:  # after SGD, so old outputs stay valid for the KL
      normalizer_params = update_normalizer(normalizer_params)

    new_training_state = TrainingState(
      optimizer_state=optimizer_state,
      params=params,
      normalizer_params=normalizer_params,
      env_steps=training_state.env_steps + env_step_per_training_step,
    )
    if log_training_metrics:
      jax.debug.callback(
        metrics_aggregator.update_episode_metrics,
        data.extras["state_extras"]["episode_metrics"],
        data.extras["state_extras"]["episode_done"],
        metrics,
      )
    return (new_training_state, state, new_key), metrics

  # ---- a device call: a dynamic number of training steps -----------------
  def training_steps(training_state, state, key, flag, num_steps):
    # Abstract trace only (no ops emitted): the structure of the metrics.
    shapes = jax.eval_shape(
      lambda c: training_step(c, flag)[1], (training_state, state, key)
    )
    zeros = jax.tree.map(lambda x: jnp.zeros((), x.dtype), shapes)

    def body(_, carry):
      training_state, state, key, sums = carry
      (training_state, state, key), metrics = training_step(
        (training_state, state, key), flag
      )
      sums = jax.tree.map(lambda s, m: s + jnp.mean(m), sums, metrics)
      return training_state, state, key, sums

    training_state, state, key, sums = jax.lax.fori_loop(
      0, num_steps, body, (training_state, state, key, zeros)
    )
    # Envs may leave weakly typed fields in their state; returned as they are
    # they would not match the strong inputs of the first call, and the next
    # call would compile the whole program again.
    return _strong(training_state), _strong(state), key, sums

  training_steps = jax.pmap(
    training_steps,
    axis_name=_AXIS,
    in_axes=(0, 0, 0, None, None),
    donate_argnums=(0, 1),
  )

  # ---- initial state ------------------------------------------------------
  # brax declares PPONetworkParams and UInt64 with flax.struct reached
  # through `import flax`, which pyright does not follow: it sees no fields.
  policy_init = ppo_network.policy_network.init(key_policy)
  value_init = ppo_network.value_network.init(key_value)
  init_params = ppo_losses.PPONetworkParams(
    policy=policy_init,  # pyright: ignore[reportCallIssue]
    value=value_init,  # pyright: ignore[reportCallIssue]
  )
  obs_spec = jax.tree.map(
    lambda x: specs.Array(x.shape[-1:], jnp.dtype("float32")), env_state.obs
  )
  training_state = TrainingState(
    # optax types params as an array tree; a flax struct is a pytree too
    optimizer_state=optimizer.init(cast(optax.Params, init_params)),
    params=init_params,
    normalizer_params=running_statistics.init_state(
      _remove_pixels(obs_spec),
      std_eps=normalize_observations_std_eps,
      mode=normalize_observations_mode,
    ),
    env_steps=types.UInt64(hi=0, lo=0),  # pyright: ignore[reportCallIssue]
  )

  def restore(training_state, saved):
    value = saved[2] if restore_value_fn else init_params.value
    return training_state.replace(
      normalizer_params=saved[0],
      params=training_state.params.replace(policy=saved[1], value=value),
    )

  if restore_checkpoint_path is not None:
    training_state = restore(
      training_state, checkpoint.load(restore_checkpoint_path)
    )
  if restore_params is not None:
    logging.info("Restoring TrainingState from `restore_params`.")
    training_state = restore(training_state, restore_params)

  if num_timesteps == 0:
    return (
      make_policy,
      (
        training_state.normalizer_params,
        training_state.params.policy,
        training_state.params.value,
      ),
      {},
    )

  training_state = place.replicate(_strong(training_state))
  env_state = place.shard(_strong(env_state))

  eval_env = _wrap_env(
    eval_env or environment,
    wrap_env,
    num_eval_envs,
    episode_length,
    action_repeat,
    1,
    eval_key,
    wrap_env_fn,
    randomization_fn,
  )
  if episode_length is None:  # the eval unroll's length
    raise ValueError("episode_length must be specified in ppo.train")
  evaluator = Evaluator(
    eval_env,
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
      (
        training_state.normalizer_params,
        training_state.params.policy,
        training_state.params.value,
      )
    )

  def report(step, metrics):
    progress_fn(step, metrics)
    stream.progress(step, metrics)

  total_steps = (
    num_evals_after_init
    * max(num_resets_per_eval, 1)
    * num_training_steps_per_epoch
    * env_step_per_training_step
  )
  bar = ProgressBar(total_steps, enabled=progress_bar)

  epochs = EpochCalls(
    stream,
    num_training_steps_per_epoch,
    env_step_per_training_step,
    bar,
  )
  phase = epochs.phase  # what the run does now: on the bar and the page
  training_walltime = 0.0
  current_step = 0
  metrics: Metrics = {}
  training_metrics: Metrics = {}
  stream.start()
  phase("compiling")  # until the first training call returns

  def run_epoch(training_state, env_state, key):
    """One epoch (as one or more device calls, see EpochCalls)."""
    nonlocal training_walltime
    keys = place.shard(jax.random.split(key, local_devices_to_use))

    def dispatch(flag, n):
      nonlocal training_state, env_state, keys
      training_state, env_state, keys, sums = training_steps(
        training_state, env_state, keys, flag, np.int32(n)
      )
      return sums

    sums, epoch_time = epochs.run(dispatch, current_step)
    training_walltime += epoch_time
    sps = (
      num_training_steps_per_epoch
      * env_step_per_training_step
      * max(num_resets_per_eval, 1)
    ) / epoch_time
    epoch_metrics = {
      "training/sps": sps,
      "training/walltime": training_walltime,
      **{
        f"training/{k}": v / num_training_steps_per_epoch
        for k, v in sums.items()
      },
    }
    return training_state, env_state, epoch_metrics

  try:
    if process_id == 0 and num_evals > 1 and run_evals:
      metrics = evaluator.run_evaluation(  # compiles the eval program too
        current_params(), training_metrics={}, flag=stream.flag()
      )
      logging.info(metrics)
      report(0, metrics)

    policy_params_fn(current_step, make_policy, current_params())

    for it in range(num_evals_after_init):
      logging.info("starting iteration %s %s", it, time.time() - xt)
      for _ in range(max(num_resets_per_eval, 1)):
        epoch_key, local_key = jax.random.split(local_key)
        training_state, env_state, training_metrics = run_epoch(
          training_state, env_state, epoch_key
        )
        current_step = int(_first(training_state.env_steps))
        key_envs = jax.vmap(
          lambda x, s: jax.random.split(x[0], s), in_axes=(0, None)
        )(key_envs, key_envs.shape[1])
        if num_resets_per_eval > 0:
          env_state = reset_fn(env_state, place.shard(key_envs))

      if process_id != 0:
        continue
      params = current_params()
      policy_params_fn(current_step, make_policy, params)
      if save_checkpoint_path is not None:
        ckpt_config = checkpoint.network_config(
          observation_size=obs_spec,
          action_size=env.action_size,
          normalize_observations=normalize_observations,
          network_factory=network_factory,
        )
        checkpoint.save(save_checkpoint_path, current_step, params, ckpt_config)
      if num_evals > 0:
        metrics = training_metrics
        if run_evals:
          stream.eval_env_steps = current_step
          phase("evaluating")
          metrics = evaluator.run_evaluation(
            params, training_metrics, flag=stream.flag()
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
  _assert_replicated(training_state)
  params = current_params()
  logging.info("total steps: %s", current_step)
  _synchronize_hosts()
  return (make_policy, params, metrics)
