"""The trainer kit: what every braxviewer trainer needs besides its learner.

A trainer (:mod:`braxviewer.train.ppo`, :mod:`braxviewer.train.sac`) is
brax's algorithm plus these pieces, called in this order:

- :class:`~braxviewer.train.placement.Placement` (its own module): the
  processes and devices of brax's pmap layout, inputs placed the way the
  pmapped programs return them (so they compile once).
- :func:`prepare_viewer`: the viewer checked and N, its envs, chosen before
  anything compiles (a :class:`View`).
- :class:`EnvWrapping`: brax's training wrappers, for the training and the
  eval env; :func:`observation_preprocessor`.
- :func:`open_stream`: the host side of the tap (a ``Streamer``, whose
  ``flag()`` the device calls take; ``NoStream`` without a viewer);
  :func:`streamed_envs`, the N its tap selects.
- :func:`as_device_call`: a trainer's program of ``n`` training steps,
  pmapped as :meth:`Run.epoch` calls it.
- :func:`make_evaluator`: eval rollouts, streamed as ``eval``.
- :class:`Run`: the host side of the loop (sized by a :class:`Schedule`):
  epochs as device calls
  (:class:`~braxviewer.train.epoch_calls.EpochCalls`), evals, reports,
  phases and the progress bar; :func:`save_checkpoint`,
  :func:`check_total_steps`.

What a training step streams (``tap.select_frame``, ``tap.emit``) stays in
each trainer: docs/architecture.md, "Adding a trainer".
"""

from __future__ import annotations

import dataclasses
import functools
from typing import (
  Any,
  Callable,
  Mapping,
  NamedTuple,
  Optional,
  Protocol,
  Tuple,
  TypeVar,
  Union,
  cast,
)

from absl import logging
from brax import envs
from brax.training import types
from brax.training.acme import running_statistics
import jax
import numpy as np

from braxviewer.core.frames import PoseKind
from braxviewer.core.protocol import (
  StreamInfo,
  TrainingViewer,
  check_info_keys,
  check_num_envs,
)
from braxviewer.core.streamer import NoStream, Streamer, check_viewer
from braxviewer.scene.lookup import find_mj_model
from braxviewer.train import interrupt, tap
from braxviewer.train.epoch_calls import EpochCalls
from braxviewer.train.evaluator import Evaluator
from braxviewer.train.placement import AXIS, Placement
from braxviewer.train.progress import ProgressBar

DEFAULT_VIEW_ENVS = 16  # envs streamed when the viewer asks for no number

Metrics = types.Metrics
Stream = Union[Streamer, NoStream]
Carry = TypeVar("Carry")
# call(carry, keys, flag, num_steps) -> (carry, keys, summed metrics)
DeviceCall = Callable[
  [Carry, jax.Array, np.int32, np.int32], Tuple[Carry, jax.Array, Any]
]

# --------------------------------------------------------------------------
# The viewer and its stream (all checks run before anything compiles)
# --------------------------------------------------------------------------


def resolve_view_envs(viewer: TrainingViewer, envs_per_device: int) -> int:
  """N, the envs ``viewer`` streams: its ``requested_envs()``, checked
  against the envs of one device, else min(16, envs per device)."""
  asked = viewer.requested_envs()
  try:
    requested = check_num_envs(asked, "requested_envs()")
  except ValueError as err:
    raise ValueError(f"The viewer asks for {asked!r} envs: {err}") from None
  if requested is None:
    return min(DEFAULT_VIEW_ENVS, envs_per_device)
  if requested > envs_per_device:
    raise ValueError(
      f"The viewer asks for {requested} envs, but each device trains only"
      f" {envs_per_device} (num_envs / device count). Stream at most"
      f" {envs_per_device} envs or train with more."
    )
  return requested


class View(NamedTuple):
  """The trainer's viewer, checked, and the envs it is shown."""

  viewer: Optional[TrainingViewer]  # None: nothing is streamed
  num_view_envs: int  # N, the envs streamed (0 without a viewer)
  num_envs: int  # the run's training envs
  envs_per_device: int


def prepare_viewer(
  viewer: Any, environment: Any, num_envs: int, envs_per_device: int
) -> View:
  """The trainer's ``viewer=`` checked, and N chosen.

  Raises TypeError for a viewer of the wrong kind and ValueError for a bad
  N or an env with no MuJoCo model, before anything compiles.
  """
  if viewer is None:
    return View(None, 0, num_envs, envs_per_device)
  checked = check_viewer(viewer)
  num_view_envs = resolve_view_envs(checked, envs_per_device)
  if find_mj_model(environment) is None:
    raise ValueError(
      f"The environment {type(environment).__name__} exposes no MuJoCo"
      " model (env.sys.mj_model or env.mj_model), so braxviewer cannot"
      " show it. Use a brax or MuJoCo Playground env, or pass viewer=None."
    )
  return View(checked, num_view_envs, num_envs, envs_per_device)


def streamed_envs(stream: Stream) -> int:
  """N, the envs of a device the stream's tap selects (0: no tap)."""
  return stream.info.num_envs if isinstance(stream, Streamer) else 0


def open_stream(
  view: View,
  env: Any,
  env_state: Any,
  kind: PoseKind,
  *,
  chunk_length: int,
  steps_per_chunk: int,
  place: Optional[Placement] = None,
) -> Stream:
  """The host side of the tap (``NoStream`` without a viewer).

  What one env streams is read off ``env_state`` (device-sharded, leading
  axis the devices): the ``state.info`` entries are the viewer's
  ``info_keys``, else chosen. ``chunk_length``: frames per training chunk;
  ``steps_per_chunk``: env steps a training chunk advances the run by (0:
  its tag is sent along). ``place``, the run's layout (this process,
  processes, devices per process), is what ``viewer.stream_source``
  chooses from; None allows only device 0 of process 0.
  """
  viewer = view.viewer
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
    num_envs=view.num_view_envs,
    num_train_envs=view.num_envs,
    envs_per_device=view.envs_per_device,
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
    process_count=place.process_count if place else 1,
    local_devices=place.local_devices if place else 1,
  )
  return Streamer(
    viewer,
    info,
    steps_per_chunk=steps_per_chunk,
    process_index=place.process_id if place else 0,
  )


# --------------------------------------------------------------------------
# Envs and eval
# --------------------------------------------------------------------------


def _identity(observation: Any, preprocessor_params: Any) -> Any:
  del preprocessor_params
  return observation


def observation_preprocessor(normalize: bool) -> types.PreprocessObservationFn:
  """brax's observation normalizer, or the identity."""
  if not normalize:
    return _identity
  # It is the preprocessor brax made it for, but brax types it for nested
  # arrays (under other parameter names) rather than as one.
  return cast(types.PreprocessObservationFn, running_statistics.normalize)


@dataclasses.dataclass(frozen=True)
class EnvWrapping:
  """brax's training wrappers as a trainer's arguments ask for them.

  Args:
    wrap_env: False leaves envs as they are.
    wrap_env_fn: the wrapper (None: ``brax.envs.training.wrap``).
    episode_length: steps before an episode is cut.
    action_repeat: physics steps per env step.
    randomization_fn: domain randomization, as brax takes it.
  """

  wrap_env: bool
  wrap_env_fn: Optional[Callable[..., Any]]
  episode_length: Optional[int]
  action_repeat: int
  randomization_fn: Optional[Callable[..., Any]]

  def apply(self, env: Any, num_randomized: int, key: jax.Array) -> Any:
    """``env`` wrapped; ``num_randomized`` models (the envs of a device:
    every device gets the same ones) randomized with keys split off
    ``key``."""
    if not self.wrap_env:
      return env
    randomization_fn = None
    if self.randomization_fn is not None:
      randomization_fn = functools.partial(
        self.randomization_fn, rng=jax.random.split(key, num_randomized)
      )
    wrap = (
      self.wrap_env_fn if self.wrap_env_fn is not None else envs.training.wrap
    )
    return wrap(
      env,
      # a trainer that may be given None checks it before
      episode_length=cast(int, self.episode_length),
      action_repeat=self.action_repeat,
      randomization_fn=randomization_fn,
    )


def make_evaluator(
  eval_env: Any,
  make_policy: Callable[..., types.Policy],
  stream: Stream,
  *,
  key: jax.Array,
  deterministic: bool,
  num_eval_envs: int,
  wrapping: EnvWrapping,
) -> Evaluator:
  """Eval rollouts of ``eval_env`` (wrapped as the training env, its
  ``num_eval_envs`` models randomized with ``key``), the stream's first N
  envs streamed as ``eval`` while its flag is on."""
  if wrapping.episode_length is None:  # the eval unroll's length
    raise ValueError("episode_length must be specified")
  return Evaluator(
    wrapping.apply(eval_env, num_eval_envs, key),
    functools.partial(make_policy, deterministic=deterministic),
    num_eval_envs=num_eval_envs,
    episode_length=wrapping.episode_length,
    action_repeat=wrapping.action_repeat,
    key=key,
    num_view_envs=streamed_envs(stream),
    sink=stream.eval_sink,
    info_keys=stream.info_keys,
  )


class CheckpointModule(Protocol):
  """brax's ``agents.<algorithm>.checkpoint`` module, as used here."""

  def network_config(self, **kwargs: Any) -> Any: ...

  def save(self, path: str, step: int, params: Any, config: Any) -> Any: ...


def save_checkpoint(
  checkpoint: Any,
  path: str,
  step: int,
  params: Any,
  *,
  observation_size: Any,
  action_size: int,
  normalize_observations: bool,
  network_factory: Any,
) -> None:
  """``params`` saved at ``step`` under ``path`` with brax's
  ``checkpoint`` module of the algorithm (a :class:`CheckpointModule`)."""
  module = cast(CheckpointModule, checkpoint)
  config = module.network_config(
    observation_size=observation_size,
    action_size=action_size,
    normalize_observations=normalize_observations,
    network_factory=network_factory,
  )
  module.save(path, step, params, config)


# --------------------------------------------------------------------------
# The run's loop, host side
# --------------------------------------------------------------------------


def as_device_call(
  training_steps: Callable[[Carry, Any, Any, Any], Tuple[Carry, Any, Any]],
) -> DeviceCall[Carry]:
  """``training_steps(carry, keys, flag, n)`` as a device call: pmapped
  over the run's devices, ``carry`` and ``keys`` split over them (leading
  axis), ``flag`` and ``n`` the same on all, ``carry`` donated."""
  return jax.pmap(
    training_steps,
    axis_name=AXIS,
    in_axes=(0, 0, None, None),
    donate_argnums=(0,),
  )


class Schedule(NamedTuple):
  """The sizes of a run that its loop needs."""

  total_env_steps: int  # of the whole run (the progress bar's total)
  steps_per_epoch: int  # training steps in an epoch
  env_steps_per_step: int  # env steps a training step advances the run by
  epoch_env_steps: int  # env steps an epoch's speed (training/sps) counts


class Run:
  """The host side of a training loop: epochs, evals, reports, phases.

  Args:
    place: the run's devices.
    stream: from :func:`open_stream`.
    progress_fn: the trainer's ``progress_fn(env_steps, metrics)``.
    schedule: the run's sizes.
    progress_bar: the trainer's ``progress_bar`` (None: on a terminal).

  ``with run:`` starts the stream (phase ``compiling``) and ends it, and
  closes the bar, also on error; ``done`` after a clean exit. Inside it,
  Ctrl-C stops the run between device calls, in one line (the trainer's
  :func:`~braxviewer.train.interrupt.stops_on_ctrl_c`).
  """

  def __init__(
    self,
    place: Placement,
    stream: Stream,
    progress_fn: Callable[[int, Metrics], None],
    schedule: Schedule,
    progress_bar: Optional[bool],
  ):
    self.place = place
    self.stream = stream
    self.schedule = schedule
    self._progress_fn = progress_fn
    self.bar = ProgressBar(schedule.total_env_steps, enabled=progress_bar)
    self.interrupt = interrupt.current()  # the trainer's (stops_on_ctrl_c)
    self.epochs = EpochCalls(
      stream,
      schedule.steps_per_epoch,
      schedule.env_steps_per_step,
      self.bar,
      check=self.interrupt.check,
      on_phase=self.interrupt.note_phase,
    )
    self.walltime = 0.0  # training time so far, in seconds

  def __enter__(self) -> Run:
    self.stream.start()
    self.phase("compiling")  # until the first training call returns
    self.interrupt.check()  # a Ctrl-C during the set-up's compiles
    return self

  def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
    try:
      if exc_type is None:
        self.interrupt.check()  # a Ctrl-C as the run ended still stops it
        self.phase("done")
    finally:
      self.bar.close()
      self.stream.end()

  def phase(self, name: str) -> None:
    """What the run does now, on the bar and the page."""
    self.epochs.phase(name)

  def report(self, env_steps: int, metrics: Metrics) -> None:
    """Metrics to the trainer's ``progress_fn`` and to the viewer."""
    self._progress_fn(env_steps, metrics)
    self.stream.progress(env_steps, metrics)

  def epoch(
    self,
    call: DeviceCall[Carry],
    carry: Carry,
    key: jax.Array,
    first_env_steps: int,
  ) -> Tuple[Carry, Metrics]:
    """One epoch as device calls (:class:`EpochCalls`).

    ``call(carry, keys, flag, n)`` (:func:`as_device_call`) runs ``n``
    training steps on every device (``keys``: one per device, split off
    ``key``) and returns ``(carry, keys, sums)``, the sums of its steps'
    metrics; ``first_env_steps``: the run's env steps before. Returns the
    last carry and brax's training metrics.
    """
    keys = self.place.split_key(key)

    def dispatch(flag: np.int32, n: int) -> Mapping[str, Any]:
      nonlocal carry, keys
      carry, keys, sums = call(carry, keys, flag, np.int32(n))
      return sums

    sums, epoch_time = self.epochs.run(dispatch, first_env_steps)
    self.walltime += epoch_time
    steps = self.schedule.steps_per_epoch
    metrics = {
      "training/sps": self.schedule.epoch_env_steps / epoch_time,
      "training/walltime": self.walltime,
      **{f"training/{k}": v / steps for k, v in sums.items()},
    }
    return carry, cast(Metrics, metrics)

  def initial_eval(self, evaluator: Evaluator, params: Any) -> Metrics:
    """The eval before training (it compiles the eval program), reported
    at 0 env steps."""
    metrics = evaluator.run_evaluation(
      params, training_metrics={}, flag=self.stream.flag()
    )
    self.interrupt.check()
    logging.info(metrics)
    self.report(0, metrics)
    return metrics

  def evaluate(
    self,
    evaluator: Optional[Evaluator],
    params: Any,
    training_metrics: Metrics,
    env_steps: int,
  ) -> Metrics:
    """An eval after an epoch (phase ``evaluating``; its chunks tagged
    ``env_steps``), merged over the training metrics and reported; without
    an evaluator the training metrics alone."""
    metrics = training_metrics
    self.interrupt.check()
    if evaluator is not None:
      self.stream.eval_env_steps = env_steps
      self.phase("evaluating")
      metrics = evaluator.run_evaluation(
        params, training_metrics, flag=self.stream.flag()
      )
      self.phase("training")
      self.interrupt.check()
    logging.info(metrics)
    self.report(env_steps, metrics)
    return metrics


def check_total_steps(env_steps: int, num_timesteps: int) -> None:
  """brax's final check: the run did at least ``num_timesteps``."""
  if env_steps < num_timesteps:
    raise AssertionError(
      f"Total steps {env_steps} is less than `num_timesteps`= {num_timesteps}."
    )
