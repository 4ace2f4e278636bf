"""Stream the first N envs of any jitted loop: a wrapper over the batched env.

:func:`wrap` puts a brax-style :class:`ViewerWrapper` OUTSIDE the vmap (after
the trainer's own wrapping: brax's ``training.wrap``, MuJoCo Playground's
``wrap_for_brax_training``). Whatever loop steps the wrapped env (``jit``,
``lax.scan``, ``pmap``) then streams its first N envs:

- each ``step`` writes the first N envs' frame (:func:`braxviewer.train.tap.
  select_frame`), packed as one float32 row per env, into a
  ``(T, N, width)`` buffer kept in ``state.info["braxviewer"]`` with a step
  counter;
- every T steps one tiny host call reads the viewer's mode (a runtime
  value: switching needs no recompile) and, when it is live or sync, ONE
  callback sends the chunk to a :class:`braxviewer.core.streamer.Streamer`
  (sequence numbers, viewer faults isolated).

Both host calls are ``jax.pure_callback`` s, so the user's jitted loop has
no JAX effect and keeps JAX's fast C++ dispatch (an effect, as
``io_callback`` or ``jax.debug.callback`` have, costs every call of the
loop ~1-2 ms of Python on a CPU: docs/benchmarks.md). What keeps them from
being dead code: their results are counted in the entry, and the step's
``reward`` (its value unchanged) depends on that count, so a loop that
keeps the rewards but drops the final state still streams.

The inner env never sees the wrapper's entry (it is taken out before the
inner ``step`` and put back after), so the env computes exactly what it
computes without the wrapper. ``reset`` and ``step`` return states of the
same structure, so a ``lax.scan`` can carry them.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Dict, Optional, Tuple, cast

from brax.envs.base import Env, Wrapper
import jax
import jax.numpy as jnp
import numpy as np

from braxviewer.core.frames import PoseKind
from braxviewer.core.protocol import (
  TRAINING_SPS,
  StreamInfo,
  check_info_keys,
  check_num_envs,
)
from braxviewer.core.streamer import Streamer, check_viewer
from braxviewer.train import tap

KEY = "braxviewer"  # the wrapper's entry in state.info
CHUNK_LENGTH = 64  # frames per chunk (T) unless told
DEFAULT_ENVS = 16  # envs streamed unless told: min(16, envs per device)
HEARTBEAT_S = 0.5  # seconds between steps/s reports to the viewer


def _axis_size(axis_name: Optional[str]) -> int:
  """Devices along ``axis_name`` when traced under it, else 1."""
  if axis_name is None:
    return 1
  try:
    return int(jax.lax.axis_size(axis_name))
  except NameError:
    return 1


class ViewerWrapper(Wrapper):
  """Streams the first ``num_envs`` envs of a batched env to ``viewer``.

  Args:
    env: the batched env (brax after ``training.wrap``, or MuJoCo
      Playground after ``wrap_for_brax_training``): ``reset`` takes a batch
      of keys, ``step`` a batched state.
    viewer: any :class:`braxviewer.core.protocol.TrainingViewer`.
    num_envs: envs to stream (None: the viewer's ``requested_envs()``, else
      min(16, envs per device)).
    chunk_length: frames per chunk (T): one mode read and at most one
      callback per T steps.
    axis_name: under ``pmap``, its axis name: only device 0 streams (and
      reads the mode). Without it every device would send its chunks.
  """

  def __init__(
    self,
    env: Any,
    viewer: Any,
    num_envs: Optional[int] = None,
    *,
    chunk_length: int = CHUNK_LENGTH,
    axis_name: Optional[str] = None,
  ):
    super().__init__(cast(Env, env))
    self._viewer = check_viewer(viewer)
    asked = check_num_envs(num_envs)
    if asked is None:
      asked = check_num_envs(viewer.requested_envs(), "viewer.requested_envs()")
    self._asked_envs = asked
    self._asked_info = check_info_keys(
      getattr(viewer, "info_keys", None), "viewer.info_keys"
    )
    if isinstance(chunk_length, bool) or not isinstance(chunk_length, int):
      raise ValueError(f"chunk_length must be an int, got {chunk_length!r}.")
    if chunk_length < 1:
      raise ValueError(f"chunk_length must be at least 1, got {chunk_length}.")
    self.chunk_length = chunk_length
    self.axis_name = axis_name
    self.kind: PoseKind = tap.pose_kind(env)
    self._dt = _seconds(getattr(env, "dt", 0.0))  # read outside any trace
    self._lock = threading.Lock()
    self._stream: Optional[Streamer] = None
    self._frame: Optional[Tuple[int, Tuple[str, ...]]] = None  # (N, keys)
    self._closed = False
    self._beat: Optional[Tuple[float, int]] = None  # (time, env steps)
    self._reads = 0  # mode reads: chunks the lead device completed

  # -- the host side -----------------------------------------------------------

  @property
  def stream(self) -> Optional[Streamer]:
    """The host side of the stream, once a reset or step was traced."""
    return self._stream

  def _open(self, state: Any) -> Tuple[int, Tuple[str, ...]]:
    """At trace time: what to stream (N, info keys); the stream starts on
    the first trace (``viewer.on_stream_start``)."""
    batch = int(state.reward.shape[0])
    with self._lock:
      if self._frame is not None:
        num, keys = self._frame
        if num > batch:
          raise ValueError(
            f"ViewerWrapper streams {num} envs; this env state has {batch}:"
            " wrap each batched env with its own wrapper."
          )
        return self._frame
      num = self._asked_envs or min(DEFAULT_ENVS, batch)
      if num > batch:
        raise ValueError(
          f"num_envs={num} exceeds the {batch} envs per device of the"
          " wrapped env: stream at most that many."
        )
      spec = tap.describe(state, self.kind, info_keys=self._asked_info)
      devices = _axis_size(self.axis_name)
      info = StreamInfo(
        num_envs=num,
        num_train_envs=batch * devices,
        envs_per_device=batch,
        kind=self.kind,
        nq=spec.nq,
        num_links=spec.num_links,
        dt=self._dt,
        chunk_length=self.chunk_length,
        reward_terms=spec.reward_terms,
        backend=getattr(self.env, "backend", None),
        nmocap=spec.nmocap,
        info_keys=spec.info_keys,
        info_shapes=spec.info_shapes,
      )
      steps = self.chunk_length * batch * devices
      self._stream = Streamer(self._viewer, info, steps_per_chunk=steps)
      self._frame = (num, spec.info_keys)
    self._stream.start()
    self._stream.phase("compiling")  # traced now: the loop compiles next
    return self._frame

  def _host_flag(self) -> np.ndarray:
    """Once per chunk (from the device): the viewer's mode as the tap's
    flag, plus a steps/s heartbeat (env steps counted here, one chunk per
    call). Never raises into the device program."""
    try:
      stream = self._stream
      if stream is None or self._closed:
        return np.zeros((), np.int32)
      flag = stream.flag()
      self._reads += 1
      if self._reads == 1:  # the loop's program runs: it compiled
        stream.phase("training")
      steps = self._reads * stream.info.chunk_length
      steps *= stream.info.num_train_envs
      now = time.monotonic()
      if self._beat is None:
        self._beat = (now, steps)
      elif now - self._beat[0] >= HEARTBEAT_S:
        t0, s0 = self._beat
        self._beat = (now, steps)
        stream.progress(steps, {TRAINING_SPS: (steps - s0) / (now - t0)})
      return np.asarray(flag, np.int32)
    except Exception:
      return np.zeros((), np.int32)

  def _sink(self, chunk: Dict[str, Any], chunks: np.ndarray) -> bool:
    """The packed callback's host end: a chunk to the Streamer (False:
    dropped, the stream was closed)."""
    stream = self._stream
    if stream is None or self._closed:
      return False
    before = int(np.asarray(chunks)) * stream.info.chunk_length
    before *= stream.info.num_train_envs
    stream.train_sink(chunk, before >> 32, before & 0xFFFFFFFF)
    return True

  def close(self) -> None:
    """End the stream (``viewer.on_stream_end``, once). Chunks the device
    sends afterwards are dropped."""
    with self._lock:
      if self._closed:
        return
      self._closed = True
      stream = self._stream
    if stream is not None:
      stream.end()

  def __enter__(self) -> "ViewerWrapper":
    return self

  def __exit__(self, *exc: Any) -> None:
    self.close()

  # -- the jit side ------------------------------------------------------------

  def _select(self, state: Any, num: int, keys: Tuple[str, ...]) -> tap.Frame:
    return tap.select_frame(state, num, self.kind, info_keys=keys)

  def _layout(self, state: Any) -> "_Layout":
    """At trace time: how a frame is packed into one row per env."""
    num, keys = self._open(state)
    shapes = jax.eval_shape(lambda s: self._select(s, num, keys), state)
    return _Layout(shapes)

  def _empty(self, state: Any) -> Dict[str, Any]:
    layout = self._layout(state)
    zero = jnp.zeros((), jnp.int32)
    return {
      "frames": jnp.zeros(
        (self.chunk_length, layout.num, layout.width), jnp.float32
      ),
      "count": zero,
      "chunks": zero,
      "flag": zero,
      "sent": zero,
    }

  def reset(self, rng: jax.Array) -> Any:
    state = self.env.reset(rng)
    return _attach(state, self._empty(state))

  def step(self, state: Any, action: jax.Array) -> Any:
    inner, mine = _detach(state)
    state = self.env.step(inner, action)
    mine = self._record(state, mine)
    # The reward, unchanged, made to depend on the chunks sent: a loop that
    # keeps the rewards but drops the final state (a rollout returning its
    # trajectory) still needs the callbacks, so no DCE removes them.
    reward = jnp.where(mine["sent"] < 0, state.reward + 1, state.reward)
    return _attach(state.replace(reward=reward), mine)

  def _record(self, state: Any, mine: Dict[str, Any]) -> Dict[str, Any]:
    """Write this step's frame; every T steps, send the chunk if wanted.
    ``flag`` is the last mode read, ``sent`` the chunks the stream took."""
    num, keys = self._open(state)
    layout = self._layout(state)
    frame = jax.lax.stop_gradient(self._select(state, num, keys))
    count, chunks = mine["count"], mine["chunks"]
    frames = jax.lax.dynamic_update_index_in_dim(
      mine["frames"], layout.pack(frame), count, 0
    )
    full = count + 1 >= self.chunk_length
    lead = full
    if self.axis_name is not None and _axis_size(self.axis_name) > 1:
      first = jax.lax.axis_index(self.axis_name) == 0
      lead = jnp.logical_and(full, first)

    def host_sink(packed: np.ndarray, chunks: np.ndarray) -> np.ndarray:
      took = self._sink(layout.unpack(np.asarray(packed)), chunks)
      return np.asarray(int(took), np.int32)

    def flush(
      frames: jax.Array, chunks: jax.Array, flag: jax.Array, sent: jax.Array
    ) -> Tuple[jax.Array, jax.Array]:
      del flag
      flag = jax.pure_callback(
        self._host_flag, jax.ShapeDtypeStruct((), jnp.int32)
      )
      took = jax.lax.cond(
        flag > 0,
        lambda: jax.pure_callback(
          host_sink, jax.ShapeDtypeStruct((), jnp.int32), frames, chunks
        ),
        lambda: jnp.zeros((), jnp.int32),
      )
      return flag, sent + took

    def wait(
      frames: jax.Array, chunks: jax.Array, flag: jax.Array, sent: jax.Array
    ) -> Tuple[jax.Array, jax.Array]:
      del frames, chunks
      return flag, sent

    flag, sent = jax.lax.cond(
      lead, flush, wait, frames, chunks, mine["flag"], mine["sent"]
    )
    return {
      "frames": frames,
      "count": (count + 1) % self.chunk_length,
      "chunks": chunks + full.astype(jnp.int32),
      "flag": flag,
      "sent": sent,
    }


class _Layout:
  """A frame (leaves shaped ``(N, ...)``) as one float32 row per env:
  4-byte leaves bit-cast (exact), others cast; :meth:`unpack` gives the
  host the frames back in their structure and dtypes."""

  def __init__(self, shapes: Any):
    leaves, self._treedef = jax.tree.flatten(shapes)
    self.num = int(leaves[0].shape[0]) if leaves else 0
    self._specs = []  # (shape per env, dtype, width)
    for x in leaves:
      rest = tuple(int(d) for d in x.shape[1:])
      self._specs.append((rest, np.dtype(x.dtype), int(np.prod(rest))))
    self.width = sum(w for _, _, w in self._specs)

  def pack(self, frame: Any) -> jax.Array:
    """One step's frame as an ``(N, width)`` float32 array."""
    parts = []
    for x, (_, dtype, width) in zip(jax.tree.leaves(frame), self._specs):
      x = jnp.reshape(x, (self.num, width))
      if dtype == np.float32:
        pass
      elif dtype.itemsize == 4:
        x = jax.lax.bitcast_convert_type(x, jnp.float32)
      else:
        x = x.astype(jnp.float32)
      parts.append(x)
    if not parts:
      return jnp.zeros((self.num, 0), jnp.float32)
    return jnp.concatenate(parts, axis=1)

  def unpack(self, packed: np.ndarray) -> Any:
    """``(T, N, width)`` rows back as the frames' tree of ``(T, N, ...)``."""
    steps, out, offset = packed.shape[0], [], 0
    for rest, dtype, width in self._specs:
      part = np.ascontiguousarray(packed[:, :, offset : offset + width])
      offset += width
      if dtype == np.float32:
        pass
      elif dtype.itemsize == 4:
        part = part.view(dtype)
      else:
        part = part.astype(dtype)
      out.append(part.reshape((steps, self.num) + rest))
    return jax.tree.unflatten(self._treedef, out)


def _seconds(value: Any) -> float:
  try:
    return float(value or 0.0)
  except Exception:
    return 0.0


def _detach(state: Any) -> Tuple[Any, Dict[str, Any]]:
  """The state as the inner env knows it, and the wrapper's entry."""
  info = dict(state.info)
  if KEY not in info:
    raise ValueError(
      "This state has no braxviewer entry in state.info: step the"
      " ViewerWrapper with states its own reset returned."
    )
  mine = info.pop(KEY)
  return state.replace(info=info), mine


def _attach(state: Any, mine: Dict[str, Any]) -> Any:
  return state.replace(info={**state.info, KEY: mine})


def wrap(
  env: Any,
  viewer: Any,
  num_envs: Optional[int] = None,
  *,
  chunk_length: int = CHUNK_LENGTH,
  axis_name: Optional[str] = None,
) -> ViewerWrapper:
  """Stream the first ``num_envs`` envs of whatever loop steps ``env`` (a
  batched env) to ``viewer``; see :class:`ViewerWrapper`."""
  return ViewerWrapper(
    env, viewer, num_envs, chunk_length=chunk_length, axis_name=axis_name
  )
