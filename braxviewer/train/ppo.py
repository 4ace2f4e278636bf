"""Proximal policy optimization, as brax trains it, with a viewer tap.

A drop-in for ``brax.training.agents.ppo.train``: same parameters, defaults
and return value, plus ``viewer=``. Built on brax's public modules (losses,
networks, gradients, running_statistics, checkpoint, logger) and on the
trainer kit (:mod:`braxviewer.train.kit`, :mod:`braxviewer.train.placement`);
the same seed learns the same params as upstream, with or without a viewer.

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

import dataclasses
import functools
import time
from typing import (
  Any,
  Callable,
  Mapping,
  NamedTuple,
  Optional,
  Tuple,
  Union,
  cast,
)

from absl import logging
from brax import base, envs
from brax.training import gradients, types
from brax.training import logger as metric_logger
from brax.training.acme import running_statistics, specs
from brax.training.agents.ppo import checkpoint
from brax.training.agents.ppo import losses as ppo_losses
from brax.training.agents.ppo import networks as ppo_networks
from brax.training.agents.ppo import optimizer as ppo_optimizer
from flax import struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from braxviewer.core.frames import PoseKind
from braxviewer.train import interrupt, kit, tap
from braxviewer.train.placement import (
  AXIS,
  Placement,
  assert_replicated,
  first,
  strong,
  synchronize_hosts,
)

Metrics = types.Metrics
_NO_EPISODE_LENGTH = "episode_length must be specified in ppo.train"


@struct.dataclass
class TrainingState:
  """Learner state, replicated over devices."""

  optimizer_state: optax.OptState
  params: ppo_losses.PPONetworkParams
  normalizer_params: running_statistics.RunningStatisticsState
  env_steps: types.UInt64


# --------------------------------------------------------------------------
# Set-up: checks, sizes, envs (nothing compiles)
# --------------------------------------------------------------------------


class _Sizes(NamedTuple):
  """How the run's env steps split into evals, epochs and training steps."""

  env_steps_per_training_step: int
  num_evals_after_init: int
  training_steps_per_epoch: int
  epochs_per_eval: int  # max(num_resets_per_eval, 1)
  num_unrolls: int  # unrolls of every env per training step

  @property
  def schedule(self) -> kit.Schedule:
    # brax counts an epoch's speed over all the epochs between two evals
    epoch_env_steps = (
      self.training_steps_per_epoch
      * self.env_steps_per_training_step
      * self.epochs_per_eval
    )
    return kit.Schedule(
      total_env_steps=self.num_evals_after_init * epoch_env_steps,
      steps_per_epoch=self.training_steps_per_epoch,
      env_steps_per_step=self.env_steps_per_training_step,
      epoch_env_steps=epoch_env_steps,
    )


def _setup(
  environment: Any,
  viewer: Any,
  *,
  max_devices_per_host: Optional[int],
  num_timesteps: int,
  num_evals: int,
  num_envs: int,
  batch_size: int,
  unroll_length: int,
  num_minibatches: int,
  action_repeat: int,
  num_resets_per_eval: int,
  vision: bool,
  use_distributional_critic: bool,
  clipping_epsilon_value: Optional[float],
) -> Tuple[Placement, kit.View, _Sizes]:
  """The checks that need no compile (brax's, then the viewer's), the
  devices, and the sizes of the run."""
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
  place = Placement(max_devices_per_host or None)
  logging.info(
    "Device count: %d, process count: %d (id %d), devices to use: %d",
    jax.device_count(),
    place.process_count,
    place.process_id,
    place.local_devices,
  )
  view = kit.prepare_viewer(
    viewer, environment, num_envs, place.envs_per_device(num_envs)
  )
  per_step = batch_size * unroll_length * num_minibatches * action_repeat
  num_evals_after_init = max(num_evals - 1, 1)
  epochs_per_eval = max(num_resets_per_eval, 1)
  steps_per_epoch = int(
    np.ceil(num_timesteps / (num_evals_after_init * per_step * epochs_per_eval))
  )
  sizes = _Sizes(
    env_steps_per_training_step=per_step,
    num_evals_after_init=num_evals_after_init,
    training_steps_per_epoch=steps_per_epoch,
    epochs_per_eval=epochs_per_eval,
    num_unrolls=batch_size * num_minibatches // num_envs,
  )
  return place, view, sizes


def _keys(seed: int, process_id: int) -> Tuple[jax.Array, ...]:
  """Upstream's key schedule: (this process's loop key, env key, eval
  key, policy init key, value init key)."""
  key = jax.random.PRNGKey(seed)
  global_key, local_key = jax.random.split(key)
  local_key = jax.random.fold_in(local_key, process_id)
  local_key, key_env, eval_key = jax.random.split(local_key, 3)
  key_policy, key_value = jax.random.split(global_key)
  return local_key, key_env, eval_key, key_policy, key_value


def _reset(
  env: Any, place: Placement, key_envs: jax.Array, use_pmap_on_reset: bool
) -> Tuple[Any, Callable[[Any, Any], Any]]:
  """The first env states, and the reset (donating the old states) that
  starts the envs over between epochs."""

  def reset_donated(env_state_donated, key_envs):
    del env_state_donated
    return env.reset(key_envs)

  if place.local_devices > 1 or use_pmap_on_reset:
    env_state = jax.pmap(env.reset, axis_name=AXIS)(place.shard(key_envs))
    reset_fn = jax.pmap(reset_donated, axis_name=AXIS, donate_argnums=(0,))
  else:
    env_state = jax.jit(jax.vmap(env.reset))(key_envs)
    reset_fn = jax.jit(reset_donated, donate_argnums=(0,), keep_unused=True)
  return env_state, reset_fn


def _next_reset_keys(key_envs: jax.Array) -> jax.Array:
  """The keys of the next reset, split off the last ones (as upstream)."""
  return jax.vmap(lambda x, s: jax.random.split(x[0], s), in_axes=(0, None))(
    key_envs, key_envs.shape[1]
  )


def _networks(
  network_factory: types.NetworkFactory[ppo_networks.PPONetworks],
  env: Any,
  env_state: Any,
  normalize_observations: bool,
  *,
  compute_value: bool,
  use_distributional_critic: bool,
) -> Tuple[ppo_networks.PPONetworks, Callable[..., Any]]:
  """brax's PPO networks for ``env`` (observations of the shape of
  ``env_state``'s, device-sharded), and its ``make_policy``."""
  ppo_network = network_factory(
    jax.tree.map(lambda x: x.shape[2:], env_state.obs),
    env.action_size,
    preprocess_observations_fn=kit.observation_preprocessor(
      normalize_observations
    ),
  )
  make_policy = ppo_networks.make_inference_fn(
    ppo_network,
    compute_value=compute_value,
    use_distributional_critic=use_distributional_critic,
  )
  return ppo_network, make_policy


# --------------------------------------------------------------------------
# The learner: brax's PPO loss, minibatch SGD, the normalizer
# --------------------------------------------------------------------------


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


def _optimizer(
  learning_rate: float,
  learning_rate_schedule: Optional[Union[str, ppo_optimizer.LRSchedule]],
  max_grad_norm: Optional[float],
) -> Tuple[optax.GradientTransformation, bool]:
  """Adam (its rate adapted to the KL when the schedule says so), after
  gradient clipping when asked; and whether the rate adapts."""
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
  return optimizer, adaptive_kl


@dataclasses.dataclass(frozen=True)
class _Learner:
  """PPO's update from one batch of unrolls: ``num_updates_per_batch``
  passes of minibatch SGD on brax's PPO loss, and the normalizer update."""

  optimizer: optax.GradientTransformation
  loss_and_pgrad: Callable[..., Any]
  adaptive_kl: bool
  learning_rate: float
  desired_kl: float
  min_learning_rate: float
  max_learning_rate: float
  num_minibatches: int
  num_updates_per_batch: int
  augment_pixels: bool
  normalize_until_count: Optional[int]

  def minibatch_step(self, carry, data, normalizer_params):
    optimizer_state, params, key = carry
    key, key_loss = jax.random.split(key)
    (_, metrics), grads = self.loss_and_pgrad(
      params, normalizer_params, data, key_loss
    )
    if self.adaptive_kl:
      kl_mean = jax.lax.pmean(metrics["kl_mean"], axis_name=AXIS)
      optimizer_state, lr = ppo_optimizer.adaptive_kl_learning_rate(
        optimizer_state,
        kl_mean,
        self.desired_kl,
        min_learning_rate=self.min_learning_rate,
        max_learning_rate=self.max_learning_rate,
      )
    else:
      lr = jnp.array(self.learning_rate)
    metrics["learning_rate"] = lr
    updates, optimizer_state = self.optimizer.update(grads, optimizer_state)
    # optax types its result as an array tree; it has the structure of params.
    params = cast(
      ppo_losses.PPONetworkParams, optax.apply_updates(params, updates)
    )
    return (optimizer_state, params, key), metrics

  def sgd_step(self, carry, unused_t, data, normalizer_params):
    optimizer_state, params, key = carry
    key, key_perm, key_grad = jax.random.split(key, 3)
    if self.augment_pixels:
      key, key_rt = jax.random.split(key)
      data = data._replace(
        observation=_shift_pixels(data.observation, key_rt),
        next_observation=_shift_pixels(data.next_observation, key_rt),
      )

    def to_minibatches(x):
      x = jax.random.permutation(key_perm, x)
      return jnp.reshape(x, (self.num_minibatches, -1) + x.shape[1:])

    (optimizer_state, params, _), metrics = jax.lax.scan(
      functools.partial(
        self.minibatch_step, normalizer_params=normalizer_params
      ),
      (optimizer_state, params, key_grad),
      jax.tree.map(to_minibatches, data),
      length=self.num_minibatches,
    )
    return (optimizer_state, params, key), metrics

  def update_normalizer(self, normalizer_params, data):
    return running_statistics.update(
      normalizer_params,
      _remove_pixels(data.observation),
      pmap_axis_name=AXIS,
      until_count=self.normalize_until_count,
    )

  def update(self, training_state: TrainingState, data, key_sgd):
    """(optimizer state, params, normalizer params, metrics) after SGD."""
    normalizer_params = training_state.normalizer_params
    if not self.adaptive_kl:  # before SGD, as upstream
      normalizer_params = self.update_normalizer(normalizer_params, data)
    (optimizer_state, params, _), metrics = jax.lax.scan(
      functools.partial(
        self.sgd_step, data=data, normalizer_params=normalizer_params
      ),
      (training_state.optimizer_state, training_state.params, key_sgd),
      (),
      length=self.num_updates_per_batch,
    )
    if self.adaptive_kl:  # after SGD, so old outputs stay valid for the KL
      normalizer_params = self.update_normalizer(normalizer_params, data)
    return optimizer_state, params, normalizer_params, metrics


def _learner(
  ppo_network: ppo_networks.PPONetworks,
  *,
  learning_rate: float,
  learning_rate_schedule: Optional[Union[str, ppo_optimizer.LRSchedule]],
  max_grad_norm: Optional[float],
  desired_kl: float,
  min_learning_rate: float,
  max_learning_rate: float,
  num_minibatches: int,
  num_updates_per_batch: int,
  augment_pixels: bool,
  normalize_until_count: Optional[int],
  **loss_args: Any,
) -> _Learner:
  """brax's PPO loss (``loss_args``: the keyword arguments of brax's
  ``compute_ppo_loss``) and optimizer, as a :class:`_Learner`."""
  optimizer, adaptive_kl = _optimizer(
    learning_rate, learning_rate_schedule, max_grad_norm
  )
  loss_fn = functools.partial(
    ppo_losses.compute_ppo_loss, ppo_network=ppo_network, **loss_args
  )
  loss_and_pgrad = gradients.loss_and_pgrad(
    # brax types loss_fn as returning a float, also with has_aux=True
    loss_fn,  # pyright: ignore[reportArgumentType]
    pmap_axis_name=AXIS,
    has_aux=True,
  )
  return _Learner(
    optimizer=optimizer,
    loss_and_pgrad=loss_and_pgrad,
    adaptive_kl=adaptive_kl,
    learning_rate=learning_rate,
    desired_kl=desired_kl,
    min_learning_rate=min_learning_rate,
    max_learning_rate=max_learning_rate,
    num_minibatches=num_minibatches,
    num_updates_per_batch=num_updates_per_batch,
    augment_pixels=augment_pixels,
    normalize_until_count=normalize_until_count,
  )


# --------------------------------------------------------------------------
# A training step, and a device call of many (the viewer's hook: tap.emit)
# --------------------------------------------------------------------------


def _emit_step(flag, frames, stream: kit.Stream, env_steps: Any):
  """The viewer's hook: a training step's frames, one chunk, one gated
  callback (its unrolls continue each other), tagged with the step's env
  steps."""
  assert stream.train_sink is not None  # a tapped stream has its sinks
  frames = jax.tree.map(lambda x: jnp.reshape(x, (-1,) + x.shape[2:]), frames)
  tap.emit(
    flag,
    frames,
    stream.train_sink,
    env_steps.hi,
    env_steps.lo,
    axis_name=AXIS,
  )


def _to_batch(data, bootstrap_on_timeout: bool, discounting: float):
  """Unrolls as one batch, leading dims (batch_size * num_minibatches,
  unroll_length); with ``bootstrap_on_timeout`` a timed-out step's reward
  takes the discounted value of where it stopped."""
  data = jax.tree.map(lambda x: jnp.swapaxes(x, 1, 2), data)
  data = jax.tree.map(lambda x: jnp.reshape(x, (-1,) + x.shape[2:]), data)
  if bootstrap_on_timeout:
    time_out = data.extras["state_extras"]["time_out"]
    value = data.extras["policy_extras"]["value"]
    data = data._replace(reward=data.reward + discounting * time_out * value)
  return data


def _training_step(
  env: Any,
  make_policy: Callable[..., Any],
  learner: _Learner,
  stream: kit.Stream,
  *,
  kind: PoseKind,
  sizes: _Sizes,
  unroll_length: int,
  bootstrap_on_timeout: bool,
  discounting: float,
  log_training_metrics: bool,
  training_metrics_steps: Optional[int],
  report: Callable[[int, Metrics], None],
):
  """``training_step((training_state, env_state, key), flag)``: unrolls
  of every env, streamed when the flag says so, then the update; with
  ``log_training_metrics`` its episodes' metrics go to ``report``."""
  episode_logger = None
  if log_training_metrics:
    episode_logger = metric_logger.EpisodeMetricsLogger(
      steps_between_logging=training_metrics_steps
      or sizes.env_steps_per_training_step,
      progress_fn=report,
    )
  extra_fields = ("truncation", "episode_metrics", "episode_done") + (
    ("time_out",) if bootstrap_on_timeout else ()
  )

  def one_unroll(carry, unused_t, policy):
    current_state, current_key = carry
    current_key, next_key = jax.random.split(current_key)
    next_state, data, frames = tap.generate_unroll(
      env,
      current_state,
      policy,
      current_key,
      unroll_length,
      extra_fields=extra_fields,
      num_view_envs=kit.streamed_envs(stream),
      kind=kind,
      info_keys=stream.info_keys,
    )
    return (next_state, next_key), (data, frames)

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
    (state, _), (data, frames) = jax.lax.scan(
      functools.partial(one_unroll, policy=policy),
      (state, key_generate_unroll),
      (),
      length=sizes.num_unrolls,
    )
    if stream.tapped:
      _emit_step(flag, frames, stream, training_state.env_steps)
    data = _to_batch(data, bootstrap_on_timeout, discounting)
    optimizer_state, params, normalizer_params, metrics = learner.update(
      training_state, data, key_sgd
    )
    new_training_state = TrainingState(
      optimizer_state=optimizer_state,
      params=params,
      normalizer_params=normalizer_params,
      env_steps=training_state.env_steps + sizes.env_steps_per_training_step,
    )
    if episode_logger is not None:
      jax.debug.callback(
        episode_logger.update_episode_metrics,
        data.extras["state_extras"]["episode_metrics"],
        data.extras["state_extras"]["episode_done"],
        metrics,
      )
    return (new_training_state, state, new_key), metrics

  return training_step


def _device_call(training_step) -> kit.DeviceCall:
  """The one compiled program: ``(training state, env state), keys, flag,
  n`` -> the same after ``n`` training steps (a traced bound), and the sums
  of their metrics."""

  def training_steps(carry, key, flag, num_steps):
    training_state, state = carry
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
    return (strong(training_state), strong(state)), key, sums

  return kit.as_device_call(training_steps)


# --------------------------------------------------------------------------
# Initial state and checkpoints
# --------------------------------------------------------------------------


def _initial_state(
  ppo_network: ppo_networks.PPONetworks,
  optimizer: optax.GradientTransformation,
  obs: Any,
  key_policy: jax.Array,
  key_value: jax.Array,
  normalize_observations_std_eps: float,
  normalize_observations_mode: str,
) -> Tuple[TrainingState, Any]:
  """The first training state, and the spec of one observation (``obs``:
  the first, device-sharded)."""
  obs_spec = jax.tree.map(
    lambda x: specs.Array(x.shape[-1:], jnp.dtype("float32")), obs
  )
  # brax declares PPONetworkParams and UInt64 with flax.struct reached
  # through `import flax`, which pyright does not follow: it sees no fields.
  policy_init = ppo_network.policy_network.init(key_policy)
  value_init = ppo_network.value_network.init(key_value)
  init_params = ppo_losses.PPONetworkParams(
    policy=policy_init,  # pyright: ignore[reportCallIssue]
    value=value_init,  # pyright: ignore[reportCallIssue]
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
  return training_state, obs_spec


def _restored(
  training_state: TrainingState,
  restore_checkpoint_path: Optional[str],
  restore_params: Optional[Any],
  restore_value_fn: bool,
) -> TrainingState:
  """The state with the saved normalizer, policy and (if
  ``restore_value_fn``) value params of a checkpoint, then of
  ``restore_params``."""
  init_value = training_state.params.value

  def restore(training_state, saved):
    value = saved[2] if restore_value_fn else init_value
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
  return training_state


def _params(training_state: TrainingState) -> Tuple[Any, Any, Any]:
  """What brax returns and saves: (normalizer, policy, value) params."""
  return (
    training_state.normalizer_params,
    training_state.params.policy,
    training_state.params.value,
  )


# --------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------


@interrupt.stops_on_ctrl_c
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
  xt = time.time()
  place, view, sizes = _setup(
    environment,
    viewer,
    max_devices_per_host=max_devices_per_host,
    num_timesteps=num_timesteps,
    num_evals=num_evals,
    num_envs=num_envs,
    batch_size=batch_size,
    unroll_length=unroll_length,
    num_minibatches=num_minibatches,
    action_repeat=action_repeat,
    num_resets_per_eval=num_resets_per_eval,
    vision=vision,
    use_distributional_critic=use_distributional_critic,
    clipping_epsilon_value=clipping_epsilon_value,
  )

  # ---- keys, envs, networks, learner -------------------------------------
  local_key, key_env, eval_key, key_policy, key_value = _keys(
    seed, place.process_id
  )
  if wrap_env and episode_length is None:
    raise ValueError(_NO_EPISODE_LENGTH)
  wrapping = kit.EnvWrapping(
    wrap_env, wrap_env_fn, episode_length, action_repeat, randomization_fn
  )
  env = wrapping.apply(environment, view.envs_per_device, key_env)
  key_envs = place.env_keys(key_env, num_envs)
  env_state, reset_fn = _reset(env, place, key_envs, use_pmap_on_reset)
  interrupt.current().check()  # set-up compiles: a Ctrl-C stops here
  ppo_network, make_policy = _networks(
    network_factory,
    env,
    env_state,
    normalize_observations,
    compute_value=bootstrap_on_timeout or clipping_epsilon_value is not None,
    use_distributional_critic=use_distributional_critic,
  )
  learner = _learner(
    ppo_network,
    learning_rate=learning_rate,
    learning_rate_schedule=learning_rate_schedule,
    max_grad_norm=max_grad_norm,
    desired_kl=desired_kl,
    min_learning_rate=learning_rate_schedule_min_lr,
    max_learning_rate=learning_rate_schedule_max_lr,
    num_minibatches=num_minibatches,
    num_updates_per_batch=num_updates_per_batch,
    augment_pixels=augment_pixels,
    normalize_until_count=normalize_until_count,
    # brax's compute_ppo_loss
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

  # ---- the viewer's stream, the training program -------------------------
  kind = tap.pose_kind(env)
  # Every process with a viewer compiles the same tap; the flag lets only
  # the chosen process (and device) send.
  stream = kit.open_stream(
    view,
    env,
    env_state,
    kind,
    chunk_length=sizes.num_unrolls * unroll_length,
    steps_per_chunk=sizes.env_steps_per_training_step,
    place=place,
  )
  training_steps = _device_call(
    _training_step(
      env,
      make_policy,
      learner,
      stream,
      kind=kind,
      sizes=sizes,
      unroll_length=unroll_length,
      bootstrap_on_timeout=bootstrap_on_timeout,
      discounting=discounting,
      log_training_metrics=log_training_metrics,
      training_metrics_steps=training_metrics_steps,
      report=lambda step, metrics: run.report(step, metrics),
    )
  )

  # ---- initial state ------------------------------------------------------
  training_state, obs_spec = _initial_state(
    ppo_network,
    learner.optimizer,
    env_state.obs,
    key_policy,
    key_value,
    normalize_observations_std_eps,
    normalize_observations_mode,
  )
  training_state = _restored(
    training_state, restore_checkpoint_path, restore_params, restore_value_fn
  )
  interrupt.current().check()
  if num_timesteps == 0:
    return (make_policy, _params(training_state), {})

  training_state = place.replicate(strong(training_state))
  env_state = place.shard(strong(env_state))
  if episode_length is None:  # the eval unroll's length
    raise ValueError(_NO_EPISODE_LENGTH)
  evaluator = kit.make_evaluator(
    eval_env or environment,
    make_policy,
    stream,
    key=eval_key,
    deterministic=deterministic_eval,
    num_eval_envs=num_eval_envs,
    wrapping=wrapping,
  )

  # ---- the loop: epochs, evals, checkpoints ------------------------------
  run = kit.Run(place, stream, progress_fn, sizes.schedule, progress_bar)
  current_step = 0
  metrics: Metrics = {}
  training_metrics: Metrics = {}
  with run:
    if place.process_id == 0 and num_evals > 1 and run_evals:
      metrics = run.initial_eval(evaluator, first(_params(training_state)))
    policy_params_fn(current_step, make_policy, first(_params(training_state)))

    for it in range(sizes.num_evals_after_init):
      logging.info("starting iteration %s %s", it, time.time() - xt)
      for _ in range(sizes.epochs_per_eval):
        epoch_key, local_key = jax.random.split(local_key)
        (training_state, env_state), training_metrics = run.epoch(
          training_steps, (training_state, env_state), epoch_key, current_step
        )
        current_step = int(first(training_state.env_steps))
        key_envs = _next_reset_keys(key_envs)
        if num_resets_per_eval > 0:
          env_state = reset_fn(env_state, place.shard(key_envs))

      if place.process_id != 0:
        continue
      params = first(_params(training_state))
      policy_params_fn(current_step, make_policy, params)
      if save_checkpoint_path is not None:
        kit.save_checkpoint(
          checkpoint,
          save_checkpoint_path,
          current_step,
          params,
          observation_size=obs_spec,
          action_size=env.action_size,
          normalize_observations=normalize_observations,
          network_factory=network_factory,
        )
      if num_evals > 0:
        metrics = run.evaluate(
          evaluator if run_evals else None,
          params,
          training_metrics,
          current_step,
        )

  kit.check_total_steps(current_step, num_timesteps)
  assert_replicated(training_state)
  params = first(_params(training_state))
  logging.info("total steps: %s", current_step)
  synchronize_hosts("braxviewer ppo.train end")
  return (make_policy, params, metrics)
