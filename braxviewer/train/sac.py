"""Soft actor-critic, as brax trains it, with a viewer tap.

A drop-in for ``brax.training.agents.sac.train``: same parameters, defaults
and return value, plus ``viewer=``. Built on brax's public modules (losses,
networks, gradients, replay_buffers, running_statistics, checkpoint) and on
the trainer kit (:mod:`braxviewer.train.kit`,
:mod:`braxviewer.train.placement`); the same seed learns the same params as
upstream, with or without a viewer.

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

import dataclasses
import time
from typing import Any, Callable, Dict, NamedTuple, Optional, Tuple, cast

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

from braxviewer.core.frames import PoseKind
from braxviewer.train import interrupt, kit, tap
from braxviewer.train.placement import AXIS, Placement, first, strong

Metrics = types.Metrics
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


# --------------------------------------------------------------------------
# Set-up: checks, sizes, keys (nothing compiles)
# --------------------------------------------------------------------------


def _chunk_steps(steps_per_epoch: int) -> int:
  """T: frames per chunk; at least one chunk per epoch."""
  return max(1, min(CHUNK_STEPS, steps_per_epoch))


class _Sizes(NamedTuple):
  """How the run's env steps split into prefill, epochs and training
  steps."""

  env_steps_per_actor_step: int  # one env step of every env
  num_prefill_actor_steps: int
  num_prefill_env_steps: int
  num_evals_after_init: int
  training_steps_per_epoch: int
  replay_size: int

  @staticmethod
  def make(
    num_timesteps: int,
    num_evals: int,
    num_envs: int,
    action_repeat: int,
    min_replay_size: int,
    replay_size: int,
  ) -> _Sizes:
    """brax's sizes; raises when the prefill needs more than the run."""
    per_actor_step = action_repeat * num_envs
    prefill_actor_steps = -(-min_replay_size // num_envs)
    prefill_env_steps = prefill_actor_steps * per_actor_step
    if num_timesteps < prefill_env_steps:
      raise ValueError(
        f"min_replay_size ({min_replay_size}) needs more env steps than"
        f" num_timesteps ({num_timesteps})."
      )
    evals_after_init = max(num_evals - 1, 1)
    return _Sizes(
      env_steps_per_actor_step=per_actor_step,
      num_prefill_actor_steps=prefill_actor_steps,
      num_prefill_env_steps=prefill_env_steps,
      num_evals_after_init=evals_after_init,
      training_steps_per_epoch=-(
        -(num_timesteps - prefill_env_steps)
        // (evals_after_init * per_actor_step)
      ),
      replay_size=replay_size,
    )

  @property
  def schedule(self) -> kit.Schedule:
    epoch = self.env_steps_per_actor_step * self.training_steps_per_epoch
    return kit.Schedule(
      self.num_prefill_env_steps + self.num_evals_after_init * epoch,
      self.training_steps_per_epoch,
      self.env_steps_per_actor_step,
      epoch,
    )


class _Keys(NamedTuple):
  """Upstream's key schedule."""

  randomize: jax.Array  # the training envs' randomization
  local: jax.Array  # this process's loop (prefill, epochs)
  buffer: jax.Array
  env: jax.Array  # the first reset
  eval: jax.Array
  policy: jax.Array  # the policy's init
  q: jax.Array  # the critic's init

  @staticmethod
  def make(seed: int, process_id: int) -> _Keys:
    rng, key_randomize = jax.random.split(jax.random.PRNGKey(seed))
    key_global, local_key = jax.random.split(rng)
    local_key = jax.random.fold_in(local_key, process_id)
    local_key, key_buffer, key_env, eval_key = jax.random.split(local_key, 4)
    key_policy, key_q = jax.random.split(key_global)
    return _Keys(
      key_randomize, local_key, key_buffer, key_env, eval_key, key_policy, key_q
    )


# --------------------------------------------------------------------------
# The learner: brax's SAC losses, the replay buffer, acting
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Learner:
  """brax's SAC: one env step of every env into the replay buffer, then
  ``grad_updates_per_step`` updates of alpha, critic and actor."""

  env: Any
  make_policy: Callable[..., Any]
  replay_buffer: replay_buffers.UniformSamplingQueue
  alpha_optimizer: optax.GradientTransformation
  policy_optimizer: optax.GradientTransformation
  q_optimizer: optax.GradientTransformation
  alpha_update: Callable[..., Any]
  critic_update: Callable[..., Any]
  actor_update: Callable[..., Any]
  tau: float
  grad_updates_per_step: int
  env_steps_per_actor_step: int

  def sgd_step(self, carry, transitions):
    ts, key = carry
    key, key_alpha, key_critic, key_actor = jax.random.split(key, 4)
    a_loss, alpha_params, alpha_opt = self.alpha_update(
      ts.alpha_params,
      ts.policy_params,
      ts.normalizer_params,
      transitions,
      key_alpha,
      optimizer_state=ts.alpha_optimizer_state,
    )
    alpha = jnp.exp(ts.alpha_params)  # the alpha before this update
    c_loss, q_params, q_opt = self.critic_update(
      ts.q_params,
      ts.policy_params,
      ts.normalizer_params,
      ts.target_q_params,
      alpha,
      transitions,
      key_critic,
      optimizer_state=ts.q_optimizer_state,
    )
    p_loss, policy_params, policy_opt = self.actor_update(
      ts.policy_params,
      ts.normalizer_params,
      ts.q_params,
      alpha,
      transitions,
      key_actor,
      optimizer_state=ts.policy_optimizer_state,
    )
    tau = self.tau
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

  def act(self, ts, env_state, buffer_state, key):
    """One env step of every env into the replay buffer."""
    policy = self.make_policy((ts.normalizer_params, ts.policy_params))
    env_state, transitions = acting.actor_step(
      self.env, env_state, policy, key, extra_fields=("truncation",)
    )
    ts = ts.replace(
      normalizer_params=running_statistics.update(
        ts.normalizer_params, transitions.observation, pmap_axis_name=AXIS
      ),
      env_steps=ts.env_steps + self.env_steps_per_actor_step,
    )
    return ts, env_state, self.replay_buffer.insert(buffer_state, transitions)

  def training_step(self, ts, env_state, buffer_state, key):
    key_act, key_learn = jax.random.split(key)
    ts, env_state, buffer_state = self.act(ts, env_state, buffer_state, key_act)
    buffer_state, transitions = self.replay_buffer.sample(buffer_state)
    updates = self.grad_updates_per_step
    transitions = jax.tree.map(
      lambda x: jnp.reshape(x, (updates, -1) + x.shape[1:]), transitions
    )
    (ts, _), metrics = jax.lax.scan(self.sgd_step, (ts, key_learn), transitions)
    metrics["buffer_current_size"] = self.replay_buffer.size(buffer_state)
    return ts, env_state, buffer_state, metrics


def _learner(
  env: Any,
  sac_network: sac_networks.SACNetworks,
  make_policy: Callable[..., Any],
  *,
  obs_size: int,
  learning_rate: float,
  discounting: float,
  reward_scaling: float,
  tau: float,
  batch_size: int,
  grad_updates_per_step: int,
  device_count: int,
  sizes: _Sizes,
) -> _Learner:
  """brax's SAC optimizers, losses and replay buffer, as a
  :class:`_Learner`."""
  action_size = env.action_size
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
    max_replay_size=sizes.replay_size // device_count,
    dummy_data_sample=sample,
    sample_batch_size=batch_size * grad_updates_per_step // device_count,
  )
  alpha_loss, critic_loss, actor_loss = sac_losses.make_losses(
    sac_network=sac_network,
    reward_scaling=reward_scaling,
    discounting=discounting,
    action_size=action_size,
  )
  alpha_optimizer = optax.adam(learning_rate=3e-4)
  policy_optimizer = optax.adam(learning_rate=learning_rate)
  q_optimizer = optax.adam(learning_rate=learning_rate)

  def update_fn(loss, optimizer):
    return gradients.gradient_update_fn(loss, optimizer, pmap_axis_name=AXIS)

  return _Learner(
    env=env,
    make_policy=make_policy,
    replay_buffer=replay_buffer,
    alpha_optimizer=alpha_optimizer,
    policy_optimizer=policy_optimizer,
    q_optimizer=q_optimizer,
    alpha_update=update_fn(alpha_loss, alpha_optimizer),
    critic_update=update_fn(critic_loss, q_optimizer),
    actor_update=update_fn(actor_loss, policy_optimizer),
    tau=tau,
    grad_updates_per_step=grad_updates_per_step,
    env_steps_per_actor_step=sizes.env_steps_per_actor_step,
  )


def _initial_state(
  learner: _Learner,
  sac_network: sac_networks.SACNetworks,
  keys: _Keys,
  obs_size: int,
  restore_checkpoint_path: Optional[str],
) -> TrainingState:
  """The first training state, with a checkpoint's normalizer and policy
  params when asked."""
  log_alpha = jnp.asarray(0.0, dtype=jnp.float32)
  policy_params = sac_network.policy_network.init(keys.policy)
  q_params = sac_network.q_network.init(keys.q)
  training_state = TrainingState(
    policy_optimizer_state=learner.policy_optimizer.init(policy_params),
    policy_params=policy_params,
    q_optimizer_state=learner.q_optimizer.init(q_params),
    q_params=q_params,
    target_q_params=q_params,
    gradient_steps=types.UInt64(hi=0, lo=0),  # pyright: ignore[reportCallIssue]
    env_steps=types.UInt64(hi=0, lo=0),  # pyright: ignore[reportCallIssue]
    alpha_optimizer_state=learner.alpha_optimizer.init(log_alpha),
    alpha_params=log_alpha,
    normalizer_params=running_statistics.init_state(
      specs.Array((obs_size,), jnp.dtype("float32"))
    ),
  )
  if restore_checkpoint_path is not None:
    saved = checkpoint.load(restore_checkpoint_path)
    training_state = training_state.replace(  # pyright: ignore[reportAttributeAccessIssue]
      normalizer_params=saved[0], policy_params=saved[1]
    )
  return training_state


def _params(training_state: TrainingState) -> Tuple[Any, Any]:
  """What brax returns and saves: (normalizer, policy) params, read off
  this process's first device."""
  return first((training_state.normalizer_params, training_state.policy_params))


# --------------------------------------------------------------------------
# The viewer's hook: frames of consecutive steps, one chunk per T steps
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Chunks:
  """The chunk the tap fills: a ``(T, N, ...)`` buffer on each device,
  carried across device calls with the number of frames in it; one gated
  callback each time it is full."""

  num_view_envs: int
  kind: PoseKind
  info_keys: Tuple[str, ...]
  steps: int  # T
  sink: tap.HostSink

  def frame(self, env_state):
    return tap.select_frame(
      env_state, self.num_view_envs, self.kind, info_keys=self.info_keys
    )

  def empty(self, place: Placement, env_state: Any) -> Any:
    """An empty buffer on each device (``env_state``: device-sharded)."""
    frame = jax.eval_shape(self.frame, jax.tree.map(lambda x: x[0], env_state))
    frames = jax.tree.map(
      lambda x: np.zeros((place.local_devices, self.steps) + x.shape, x.dtype),
      frame,
    )
    filled = np.zeros((place.local_devices,), np.int32)
    return place.shard((frames, filled))

  def write(self, chunk, env_state):
    """This step's frame into the buffer (no callback: the per-step loop
    stays free of side effects, which would slow it down)."""
    frames, filled = chunk
    frame = self.frame(env_state)
    frames = jax.tree.map(lambda b, f: b.at[filled].set(f), frames, frame)
    return frames, filled + 1

  def send_if_full(self, chunk, env_steps: Any, flag):
    """One gated callback when the buffer is full; then it starts over."""
    frames, filled = chunk
    full = filled == self.steps
    tap.emit(
      full.astype(jnp.int32) * flag,
      frames,
      self.sink,
      env_steps.hi,
      env_steps.lo,
      axis_name=AXIS,
    )
    return frames, jnp.where(full, 0, filled)


# --------------------------------------------------------------------------
# The programs: a device call of many training steps, the prefill
# --------------------------------------------------------------------------


def _device_call(
  learner: _Learner, chunks: Optional[_Chunks]
) -> kit.DeviceCall:
  """The one compiled program: ``(training state, env state, buffer
  state, chunk), keys, flag, n`` -> the same after ``n`` training steps (a
  traced bound), and the sums of their metrics."""

  def training_steps(carry, key, flag, n):
    ts, env_state, buffer_state, chunk = carry
    shapes = jax.eval_shape(
      lambda *args: learner.training_step(*args)[3],
      ts,
      env_state,
      buffer_state,
      key,
    )
    zeros = jax.tree.map(lambda x: jnp.zeros((), jnp.float32), shapes)

    def body(_, carry):
      ts, env_state, buffer_state, key, chunk, sums = carry
      key, next_key = jax.random.split(key)
      ts, env_state, buffer_state, metrics = learner.training_step(
        ts, env_state, buffer_state, key
      )
      if chunks is not None:
        chunk = chunks.write(chunk, env_state)
      sums = jax.tree.map(lambda s, m: s + jnp.mean(m), sums, metrics)
      return ts, env_state, buffer_state, next_key, chunk, sums

    carry = (ts, env_state, buffer_state, key, chunk, zeros)
    if chunks is None:
      carry = jax.lax.fori_loop(0, n, body, carry)
    else:
      tapped: _Chunks = chunks

      # Segments of steps up to the next full buffer, each then sent.
      def segment(state):
        done, carry = state
        steps = jnp.minimum(tapped.steps - carry[4][1], n - done)
        carry = jax.lax.fori_loop(0, steps, body, carry)
        chunk = tapped.send_if_full(carry[4], carry[0].env_steps, flag)
        return done + steps, carry[:4] + (chunk,) + carry[5:]

      _, carry = jax.lax.while_loop(
        lambda state: state[0] < n, segment, (jnp.int32(0), carry)
      )
    ts, env_state, buffer_state, key, chunk, sums = carry
    # Weakly typed outputs would compile the program again when re-fed.
    carry = (strong(ts), strong(env_state), strong(buffer_state), chunk)
    return carry, key, sums

  return kit.as_device_call(training_steps)


def _prefill(learner: _Learner, num_actor_steps: int):
  """``prefill(training state, env state, buffer state, keys)``: the
  replay buffer's first ``num_actor_steps`` env steps of every env."""

  def prefill(ts, env_state, buffer_state, key):
    def body(carry, _):
      ts, env_state, buffer_state, key = carry
      key, next_key = jax.random.split(key)
      ts, env_state, buffer_state = learner.act(
        ts, env_state, buffer_state, key
      )
      return (ts, strong(env_state), buffer_state, next_key), ()

    carry, _ = jax.lax.scan(
      body,
      (ts, env_state, buffer_state, key),
      (),
      length=num_actor_steps,
    )
    return strong(carry[:3])

  return jax.pmap(prefill, axis_name=AXIS, donate_argnums=(0, 1, 2))


# --------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------


@interrupt.stops_on_ctrl_c
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
  place = Placement(max_devices_per_host)
  logging.info(
    "local_device_count: %s; total_device_count: %s",
    place.local_devices,
    place.device_count,
  )
  if min_replay_size >= num_timesteps:
    raise ValueError(
      "No training will happen because min_replay_size >= num_timesteps"
    )
  replay_size = int(
    num_timesteps if max_replay_size is None else max_replay_size
  )
  envs_per_device = place.envs_per_device(num_envs)
  sizes = _Sizes.make(
    num_timesteps,
    num_evals,
    num_envs,
    action_repeat,
    min_replay_size,
    replay_size,
  )
  view = kit.prepare_viewer(viewer, environment, num_envs, envs_per_device)
  keys = _Keys.make(seed, place.process_id)

  # ---- envs, networks, learner -------------------------------------------
  wrapping = kit.EnvWrapping(
    wrap_env, wrap_env_fn, episode_length, action_repeat, randomization_fn
  )
  if wrap_env and wrap_env_fn is None:
    if not isinstance(environment, envs.Env):
      raise ValueError(f"Unsupported environment type: {type(environment)}")
  env = wrapping.apply(environment, envs_per_device, keys.randomize)
  obs_size = env.observation_size
  if isinstance(obs_size, Dict):
    raise NotImplementedError("Dictionary observations not implemented in SAC")
  sac_network = network_factory(
    observation_size=obs_size,
    action_size=env.action_size,
    preprocess_observations_fn=kit.observation_preprocessor(
      normalize_observations
    ),
  )
  make_policy = sac_networks.make_inference_fn(sac_network)
  learner = _learner(
    env,
    sac_network,
    make_policy,
    obs_size=obs_size,
    learning_rate=learning_rate,
    discounting=discounting,
    reward_scaling=reward_scaling,
    tau=tau,
    batch_size=batch_size,
    grad_updates_per_step=grad_updates_per_step,
    device_count=place.device_count,
    sizes=sizes,
  )

  # ---- the viewer's stream (process 0 streams), the programs -------------
  env_state = jax.pmap(env.reset)(
    place.shard(place.env_keys(keys.env, num_envs))
  )
  interrupt.current().check()  # set-up compiles: a Ctrl-C stops here
  kind = tap.pose_kind(env)
  chunk_steps = _chunk_steps(sizes.training_steps_per_epoch)
  stream = kit.open_stream(
    view if place.process_id == 0 else view._replace(viewer=None),
    env,
    env_state,
    kind,
    chunk_length=chunk_steps,
    # Chunks are tagged with the env steps of their last frame, sent along.
    steps_per_chunk=0,
  )
  chunks = None
  if stream.tapped:
    assert stream.train_sink is not None  # a tapped stream has its sinks
    n = kit.streamed_envs(stream)
    chunks = _Chunks(n, kind, stream.info_keys, chunk_steps, stream.train_sink)
  training_steps = _device_call(learner, chunks)
  prefill = _prefill(learner, sizes.num_prefill_actor_steps)

  # ---- initial state, eval ------------------------------------------------
  training_state = _initial_state(
    learner, sac_network, keys, obs_size, restore_checkpoint_path
  )
  training_state = place.replicate(strong(training_state))
  env_state = place.shard(strong(env_state))
  buffer_state = jax.pmap(learner.replay_buffer.init)(
    place.split_key(keys.buffer)
  )
  buffer_state = place.shard(strong(buffer_state))
  interrupt.current().check()
  chunk = chunks.empty(place, env_state) if chunks is not None else None
  evaluator = kit.make_evaluator(
    eval_env or environment,
    make_policy,
    stream,
    key=keys.eval,
    deterministic=deterministic_eval,
    num_eval_envs=num_eval_envs,
    wrapping=wrapping,
  )

  # ---- the loop: prefill, epochs, evals, checkpoints ---------------------
  run = kit.Run(place, stream, progress_fn, sizes.schedule, progress_bar)
  local_key = keys.local
  current_step = 0
  metrics: Metrics = {}
  with run:
    if place.process_id == 0 and num_evals > 1:
      metrics = run.initial_eval(evaluator, _params(training_state))

    t = time.time()
    prefill_key, local_key = jax.random.split(local_key)
    if sizes.num_prefill_actor_steps > 0:
      training_state, env_state, buffer_state = prefill(
        training_state, env_state, buffer_state, place.split_key(prefill_key)
      )
    run.walltime = time.time() - t
    current_step = int(first(training_state.env_steps))

    for _ in range(sizes.num_evals_after_init):
      logging.info("step %s", current_step)
      epoch_key, local_key = jax.random.split(local_key)
      carry = (training_state, env_state, buffer_state, chunk)
      carry, training_metrics = run.epoch(
        training_steps, carry, epoch_key, current_step
      )
      training_state, env_state, buffer_state, chunk = carry
      current_step = int(first(training_state.env_steps))
      if place.process_id != 0:
        continue
      params = _params(training_state)
      if checkpoint_logdir:
        kit.save_checkpoint(
          checkpoint,
          checkpoint_logdir,
          current_step,
          params,
          observation_size=obs_size,
          action_size=env.action_size,
          normalize_observations=normalize_observations,
          network_factory=network_factory,
        )
      metrics = run.evaluate(evaluator, params, training_metrics, current_step)

  kit.check_total_steps(current_step, num_timesteps)
  params = _params(training_state)
  pmap.assert_is_replicated(training_state)
  logging.info("total steps: %s", current_step)
  pmap.synchronize_hosts()
  return (make_policy, params, metrics)
