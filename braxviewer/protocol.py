"""The contract between the trainer and any viewer.

The trainer knows viewers only through :class:`TrainingViewer`: how many envs
to stream, which mode is wanted now, and three sinks (stream start, chunks,
progress). The web viewer, the recorder and :class:`HeadlessViewer` implement
it. Two members are optional (read with ``getattr``): ``on_phase(name)`` and
``info_keys``, the ``state.info`` entries to stream (None or absent: the
trainer's automatic choice; see :func:`check_info_keys`). No JAX here.
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

from braxviewer.frames import FrameChunk, PoseKind


class Mode(str, enum.Enum):
  """Streaming mode, switchable at any time during training."""

  OFF = "off"  # nothing leaves the device
  LIVE = "live"  # stream, never wait: newest chunks win, drops are counted
  SYNC = "sync"  # training waits until each chunk was shown

  @property
  def flag(self) -> int:
    """0 off, 1 live, 2 sync: the tap's runtime flag, also the order of
    demand (a stream serving several viewers runs in the highest)."""
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
    num_envs: envs streamed per chunk (the first N of device 0).
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


@runtime_checkable
class TrainingViewer(Protocol):
  """What braxviewer's ``ppo.train(viewer=...)`` accepts.

  Optional, read with ``getattr``: ``on_phase(name)`` (what the run does
  now) and ``info_keys`` (the ``state.info`` entries to stream; None: the
  automatic choice).
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
