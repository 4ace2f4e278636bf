"""The contract between the trainer and any viewer.

The trainer knows viewers only through :class:`TrainingViewer`: how many envs
to stream, which mode is wanted now, and three sinks (stream start, chunks,
progress). The web viewer, the recorder and :class:`HeadlessViewer` implement
it. Some members are optional (read with ``getattr``): ``on_phase(name)``,
``info_keys``, the ``state.info`` entries to stream (None or absent: the
trainer's automatic choice; see :func:`check_info_keys`), ``stream_source``,
the ``(process, local device)`` to stream from under multi-host or
multi-device training (see :func:`encode_flag`), and
``on_stream_source(process, device)``, the source actually used. No JAX here.
"""

from __future__ import annotations

import dataclasses
import enum
import numbers
from typing import (
  Iterable,
  Mapping,
  Optional,
  Protocol,
  Tuple,
  Union,
  runtime_checkable,
)

from braxviewer.core.frames import FrameChunk, PoseKind


class Mode(str, enum.Enum):
  """Streaming mode, switchable at any time during training."""

  OFF = "off"  # nothing leaves the device
  LIVE = "live"  # stream, never wait: newest chunks win, drops are counted
  SYNC = "sync"  # training waits until each chunk was shown

  @property
  def flag(self) -> int:
    """0 off, 1 live, 2 sync: the low bits of the tap's runtime flag (see
    :func:`encode_flag`), also the order of demand (a stream serving
    several viewers runs in the highest)."""
    return _FLAGS[self]

  @classmethod
  def parse(cls, value: "Mode | str") -> "Mode":
    if isinstance(value, Mode):
      return value
    try:
      return cls(str(value).lower())
    except ValueError:
      raise ValueError(
        f"Unknown viewer mode {value!r}: use one of 'off', 'live', 'sync'."
      ) from None


_FLAGS = {Mode.OFF: 0, Mode.LIVE: 1, Mode.SYNC: 2}

# The tap's runtime flag, one int32: the mode in the low MODE_BITS bits, the
# pmap axis index of the device that streams above them.
MODE_BITS = 2
MODE_MASK = (1 << MODE_BITS) - 1


def encode_flag(mode: Mode, device: int = 0) -> int:
  """The tap's runtime flag: ``mode.flag | device << MODE_BITS``, where
  ``device`` is the streaming device's pmap axis index (brax's layout:
  ``process_index * local_devices + local_device``). Off is 0 whatever the
  device, so a flag of 0 always means that nothing is sent."""
  if mode.flag == 0:
    return 0
  if device < 0:
    raise ValueError(f"device must be >= 0, got {device}.")
  return mode.flag | (int(device) << MODE_BITS)


def decode_flag(flag: int) -> Tuple[int, int]:
  """``(mode flag, device axis index)`` of a flag from :func:`encode_flag`."""
  flag = int(flag)
  return flag & MODE_MASK, flag >> MODE_BITS


def check_stream_source(
  value: object, name: str = "stream_source"
) -> Tuple[int, int]:
  """``value`` as ``(process_index, local_device_index)``; None is
  ``(0, 0)``. Whether that process and device exist is checked by the
  trainer (which knows its layout).

  Raises:
    ValueError: anything but None or a pair of non-negative ints.
  """
  if value is None:
    return (0, 0)
  pair = (
    tuple(value)
    if isinstance(value, Iterable) and not isinstance(value, str)
    else ()
  )
  if len(pair) != 2 or not all(
    isinstance(x, numbers.Integral) and not isinstance(x, bool) and int(x) >= 0
    for x in pair
  ):
    raise ValueError(
      f"{name} must be None or (process_index, local_device_index), two"
      f" non-negative ints, got {value!r}."
    )
  return (int(pair[0]), int(pair[1]))


# The progress key of training speed: brax reports it after every epoch, and
# braxviewer's trainer also after every device call (a heartbeat that keeps a
# page's status and speed chart moving while streaming is off).
TRAINING_SPS = "training/sps"


def check_num_envs(value: object, name: str = "num_envs") -> Optional[int]:
  """``value`` as the number of envs to stream: a positive int, or None
  (let the trainer choose).

  Raises:
    ValueError: for anything else (bools, floats, 0, negatives), naming it.
  """
  if value is None:
    return None
  if (
    isinstance(value, bool)
    or not isinstance(value, numbers.Integral)
    or int(value) < 1
  ):
    raise ValueError(f"{name} must be a positive int or None, got {value!r}.")
  return int(value)


def check_info_keys(
  value: Union[None, str, Iterable[str]], name: str = "info_keys"
) -> Optional[Tuple[str, ...]]:
  """``value`` as the ``state.info`` entries to stream: None (the trainer
  chooses: numeric per-env entries within a small budget, ``command``
  first), or names (``a/b`` for nested dicts; one string is one name;
  ``()`` streams none). Whether the env has them is checked by the trainer.

  Raises:
    ValueError: for anything else, naming it.
  """
  if value is None:
    return None
  if isinstance(value, str):
    value = (value,)
  try:
    keys = tuple(value)
  except TypeError:
    raise ValueError(
      f"{name} must be None or a sequence of names, got {value!r}."
    ) from None
  if not all(isinstance(k, str) and k for k in keys):
    raise ValueError(
      f"{name} must be None or a sequence of non-empty names, got {value!r}."
    )
  return tuple(dict.fromkeys(keys))  # in order, once each


@dataclasses.dataclass(frozen=True)
class StreamInfo:
  """What the trainer tells a viewer before the first chunk.

  Attributes:
    num_envs: envs streamed per chunk (the first N of the streaming
      device; see ``TrainingViewer``'s ``stream_source``).
    num_train_envs: all parallel training envs, over all devices.
    envs_per_device: training envs on one device.
    kind: ``"qpos"`` or ``"links"`` (brax positional/spring backends).
    nq: width of a qpos frame (None for links).
    num_links: number of links for ``"links"`` (None for qpos).
    dt: simulated seconds between two frames.
    chunk_length: frames per training chunk (T): the unroll length times
      the unrolls per training step, which continue each other.
    reward_terms: names of the streamed ``state.metrics`` entries.
    backend: the brax backend name, when known.
    nmocap: mocap bodies streamed per env (``FrameChunk.mocap_pos``).
    info_keys: the streamed ``state.info`` entries (``FrameChunk.info``),
      in order.
    info_shapes: each one's shape per env: ``()`` or ``(k,)``.
    process_count: processes of the training (``jax.process_count()``).
    local_devices: devices each process trains on; with
      ``process_count``, the ``stream_source`` choices there are.
  """

  num_envs: int
  num_train_envs: int
  envs_per_device: int
  kind: PoseKind
  nq: Optional[int]
  num_links: Optional[int]
  dt: float
  chunk_length: int
  reward_terms: Tuple[str, ...]
  backend: Optional[str] = None
  nmocap: int = 0
  info_keys: Tuple[str, ...] = ()
  info_shapes: Tuple[Tuple[int, ...], ...] = ()
  process_count: int = 1
  local_devices: int = 1


@runtime_checkable
class TrainingViewer(Protocol):
  """What braxviewer's ``ppo.train(viewer=...)`` accepts.

  Optional, read with ``getattr``: ``on_phase(name)`` (what the run does
  now), ``info_keys`` (the ``state.info`` entries to stream; None: the
  automatic choice), ``stream_source`` and ``on_stream_source``:

  - ``stream_source -> Optional[Tuple[int, int]]``: the ``(process_index,
    local_device_index)`` to stream from now; None or absent: ``(0, 0)``.
    Read between device calls like ``mode`` (no recompile when it
    changes). Only the chosen process sends (every other one runs with
    the tap off: no callback, no wait, even in sync), and within it only
    the chosen device. Under ``jax.distributed`` every process reads its
    own viewer's value: give them all the same one. A choice outside the
    run's layout is ignored (the last valid one stays) with one warning.
  - ``on_stream_source(process, device)``: the source the trainer uses,
    told once at the start and on each change.
  """

  def requested_envs(self) -> Optional[int]:
    """Envs to stream; None lets the trainer choose (min(16, per device))."""

  @property
  def mode(self) -> Mode:
    """The mode the user wants now; read by the trainer between device calls."""
    ...

  def on_stream_start(self, info: StreamInfo) -> None:
    """Called once per training run, before any chunk."""

  def on_chunk(self, chunk: FrameChunk) -> None:
    """Receives one chunk. Must not block in live mode; blocks in sync mode
    until the chunk was shown (or the mode left sync)."""

  def on_progress(self, env_steps: int, metrics: Mapping[str, float]) -> None:
    """Receives training progress (eval reward, SPS, losses, ...)."""

  def on_trainer_mode(self, mode: Mode) -> None:
    """The mode the trainer actually runs in now (reflected to the user)."""

  def on_stream_end(self) -> None:
    """Called once when training ends (also on error)."""
