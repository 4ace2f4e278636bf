"""The host side of the stream: from tap callbacks to a viewer, fault-isolated.

:class:`Streamer` owns everything the trainer does with a viewer: it turns the
arrays a tap callback receives into :class:`FrameChunk` objects, numbers them,
reads the wanted mode and stream source between device calls (as one runtime
flag: :func:`braxviewer.core.protocol.encode_flag`), and forwards progress. Any
error
raised by the viewer is caught, reported once, and streaming is switched off:
the viewer never takes a training run down. No JAX here.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any, Dict, Mapping, Optional, Tuple
import warnings

import numpy as np

from braxviewer.core.frames import FrameChunk, Source
from braxviewer.core.protocol import (
  Mode,
  StreamInfo,
  TrainingViewer,
  check_stream_source,
  encode_flag,
)


class ViewerFailure(RuntimeWarning):
  """Emitted once when a viewer raised and streaming was switched off."""


class StreamSourceWarning(UserWarning):
  """Emitted once per bad ``viewer.stream_source`` value (it is ignored)."""


def _to_uint64(hi: Any, lo: Any) -> int:
  return (int(np.asarray(hi)) << 32) | int(np.asarray(lo))


class Streamer:
  """Connects one training run to one viewer.

  Args:
    viewer: the viewer (checked against :class:`TrainingViewer` by the caller).
    info: what is streamed; sent to the viewer by :meth:`start`.
    steps_per_chunk: env steps (all envs, action repeat included) that the
      training step streamed as one chunk advances the run by.
    process_index: the process this runs in (``jax.process_index()``); the
      layout of the run (processes, devices per process) is ``info``'s.
  """

  tapped = True  # the trainer compiles the tap in

  def __init__(
    self,
    viewer: TrainingViewer,
    info: StreamInfo,
    steps_per_chunk: int,
    process_index: int = 0,
  ):
    self._viewer = viewer
    self.info = info
    self.process_index = int(process_index)
    self._source = (0, 0)  # the last valid stream_source
    self._told_source: Optional[Tuple[int, int]] = None
    self._bad_sources: set = set()  # reprs of values already warned about
    self._steps_per_chunk = int(steps_per_chunk)
    self._seq = {"train": 0, "eval": 0}
    self._lock = threading.Lock()
    self._failed = False
    self._trainer_mode: Optional[Mode] = None
    self.eval_env_steps = 0
    self.chunks_sent = 0

  # -- guarded calls ---------------------------------------------------------

  @property
  def failed(self) -> bool:
    return self._failed

  def _fail(self, where: str, err: BaseException) -> None:
    if self._failed:
      return
    self._failed = True
    msg = (
      f"braxviewer: the viewer raised in {where} ({type(err).__name__}:"
      f" {err}). Streaming is off for the rest of this run; training goes"
      " on."
    )
    warnings.warn(msg, ViewerFailure, stacklevel=2)

  def _call(self, where: str, fn, *args) -> Any:
    if self._failed:
      return None
    try:
      return fn(*args)
    except Exception as err:
      self._fail(where, err)
      return None

  # -- trainer-facing API ----------------------------------------------------

  def start(self) -> None:
    self._call("on_stream_start", self._viewer.on_stream_start, self.info)

  def end(self) -> None:
    self._call("on_stream_end", self._viewer.on_stream_end)

  def mode(self) -> Mode:
    """The mode to run the next device call in (and tell the viewer so)."""
    if self._failed:
      mode = Mode.OFF
    else:
      try:
        mode = Mode.parse(self._viewer.mode)
      except Exception as err:
        self._fail("mode", err)
        mode = Mode.OFF
    if mode != self._trainer_mode:
      self._trainer_mode = mode
      self._call("on_trainer_mode", self._viewer.on_trainer_mode, mode)
    return mode

  def _bad_source(self, value: Any) -> Optional[str]:
    """Why ``value`` is not a stream source of this run (None: it is)."""
    try:
      process, device = check_stream_source(value, "viewer.stream_source")
    except ValueError as err:
      return str(err)
    info = self.info
    if process >= info.process_count:
      return (
        f"viewer.stream_source asks for process {process}, but the run has"
        f" {info.process_count} (0 to {info.process_count - 1})."
      )
    if device >= info.local_devices:
      return (
        f"viewer.stream_source asks for local device {device}, but each"
        f" process trains on {info.local_devices} (0 to"
        f" {info.local_devices - 1})."
      )
    return None

  def source(self) -> Tuple[int, int]:
    """The ``(process, local device)`` to stream from in the next device
    call: the viewer's ``stream_source`` (absent or None: ``(0, 0)``). A
    value outside the run's layout is ignored (the last valid one stays),
    with one :class:`StreamSourceWarning` per value; the viewer's optional
    ``on_stream_source`` is told the source used when it changes."""
    if self._failed:
      return self._source
    try:
      asked = getattr(self._viewer, "stream_source", None)
    except Exception as err:
      self._fail("stream_source", err)
      return self._source
    problem = self._bad_source(asked)
    if problem is None:
      self._source = check_stream_source(asked)
    elif repr(asked) not in self._bad_sources:
      self._bad_sources.add(repr(asked))
      process, device = self._source
      warnings.warn(
        f"braxviewer: {problem} Ignored: streaming stays on process"
        f" {process}, device {device}.",
        StreamSourceWarning,
        stacklevel=2,
      )
    if self._source != self._told_source:
      self._told_source = self._source
      hook = getattr(self._viewer, "on_stream_source", None)
      if callable(hook):
        self._call("on_stream_source", hook, *self._source)
    return self._source

  def flag(self) -> np.int32:
    """The runtime flag array for the tap (:func:`encode_flag`): the mode
    and the chosen device's pmap axis index in the chosen process, 0 in
    every other process (which then never calls back, even in sync)."""
    mode = self.mode()
    process, device = self.source()
    if process != self.process_index or self._failed:
      return np.int32(0)
    return np.int32(
      encode_flag(mode, process * self.info.local_devices + device)
    )

  def phase(self, name: str) -> None:
    """What the run does now (``compiling``, ``training``, ``evaluating``,
    ``done``), for viewers that show it (an optional ``on_phase``)."""
    on_phase = getattr(self._viewer, "on_phase", None)
    if callable(on_phase):
      self._call("on_phase", on_phase, name)

  def progress(self, env_steps: int, metrics: Mapping[str, Any]) -> None:
    clean = {}
    for k, v in metrics.items():
      try:
        f = float(np.mean(np.asarray(v)))
      except (TypeError, ValueError):
        continue
      if math.isfinite(f):
        clean[k] = f
    self._call("on_progress", self._viewer.on_progress, int(env_steps), clean)

  # -- tap sinks (called from XLA's callback thread) -------------------------

  def train_sink(self, chunk, steps_hi, steps_lo) -> None:
    """Sink for training steps: tagged with env steps at the step's end."""
    before = _to_uint64(steps_hi, steps_lo)
    self.deliver(chunk, "train", before + self._steps_per_chunk)

  def eval_sink(self, chunk) -> None:
    """Sink for eval rollouts, tagged with the current training step."""
    self.deliver(chunk, "eval", self.eval_env_steps)

  @property
  def info_keys(self) -> Tuple[str, ...]:
    """The ``state.info`` entries the tap streams (chosen at the start)."""
    return tuple(self.info.info_keys)

  def _info_of(self, arrays: Mapping[str, Any]) -> Dict[str, np.ndarray]:
    """The info arrays in the stream's order (a pytree sorts them by name;
    the order chosen puts ``command`` first)."""
    order = [k for k in self.info.info_keys if k in arrays]
    order += sorted(k for k in arrays if k not in order)
    return {k: np.array(arrays[k]) for k in order}

  def deliver(
    self, arrays: Mapping[str, Any], source: Source, steps: int
  ) -> None:
    """One chunk's arrays (as the tap sends them) to the viewer, with the
    next sequence number of ``source``, tagged ``steps`` env steps; a
    viewer fault is reported once and turns the stream off."""
    if self._failed:
      return
    wall_time = time.time()
    try:
      with self._lock:
        seq = self._seq[source]
        self._seq[source] += 1

      def get(k: str) -> Optional[np.ndarray]:
        return np.array(arrays[k]) if k in arrays else None

      chunk = FrameChunk(
        seq=seq,
        source=source,
        env_steps=int(steps),
        dt=self.info.dt,
        reward=np.array(arrays["reward"]),
        done=np.array(arrays["done"]),
        truncation=np.array(arrays["truncation"]),
        metrics={k: np.array(v) for k, v in arrays["metrics"].items()},
        wall_time=wall_time,
        qpos=get("qpos"),
        link_pos=get("link_pos"),
        link_rot=get("link_rot"),
        mocap_pos=get("mocap_pos"),
        mocap_quat=get("mocap_quat"),
        info=self._info_of(arrays.get("info") or {}),
      )
    except Exception as err:
      self._fail("building a frame chunk", err)
      return
    self._call("on_chunk", self._viewer.on_chunk, chunk)
    self.chunks_sent += 1


def check_viewer(viewer: Any) -> TrainingViewer:
  """Raise a clear TypeError unless ``viewer`` implements the protocol."""
  if isinstance(viewer, TrainingViewer):
    return viewer
  needed = [
    "requested_envs",
    "mode",
    "on_stream_start",
    "on_chunk",
    "on_progress",
    "on_trainer_mode",
    "on_stream_end",
  ]
  missing = [name for name in needed if not hasattr(viewer, name)]
  raise TypeError(
    f"viewer= must be a braxviewer viewer (WebViewer, WebViewerBatched,"
    f" HeadlessViewer or any braxviewer.core.protocol.TrainingViewer), got"
    f" {type(viewer).__name__}"
    + (f" (missing: {', '.join(missing)})" if missing else "")
    + "."
  )


class NoStream:
  """What the trainer streams to without a viewer: nothing (its flag is
  always 0 and nothing is compiled to send)."""

  tapped = False
  train_sink = None
  eval_sink = None
  eval_env_steps = 0
  info_keys: Tuple[str, ...] = ()

  def start(self) -> None:
    pass

  def end(self) -> None:
    pass

  def flag(self) -> np.int32:
    return np.int32(0)

  def phase(self, name: str) -> None:
    del name

  def progress(self, env_steps: int, metrics: Mapping[str, Any]) -> None:
    del env_steps, metrics
