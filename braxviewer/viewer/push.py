"""Streaming from a Python training loop: ``viewer.push(state)``.

Trainers that call a jitted env step from Python (rsl_rl on MuJoCo
Playground through its brax wrapper, any hand-written loop) have no place
for the jit-side tap. :class:`Pusher` takes from each batched state what the
tap takes (:func:`braxviewer.train.tap.select_frame`: the first N envs' pose,
reward, done, truncation, reward terms, mocap state and the ``state.info``
entries of :func:`choose_info_keys`, the tap's rule), buffers T steps and
sends them as one :class:`~braxviewer.core.frames.FrameChunk` through a
:class:`~braxviewer.core.streamer.Streamer`, the trainer's own path (sequence
numbers, mode reads, fault isolation). What a batch holds and its checks
are :mod:`~braxviewer.viewer.batch`'s. No JAX: device arrays become numpy
through ``np.array``; in off mode nothing is read or copied.
"""

from __future__ import annotations

from typing import Any, List, Mapping, Optional
import warnings

import numpy as np

from braxviewer.core.info_keys import (
  choose_info_keys,
  flat_info,
)
from braxviewer.core.protocol import Mode, StreamInfo, TrainingViewer
from braxviewer.core.streamer import Streamer, ViewerFailure
from braxviewer.scene.lookup import find_mj_model
from braxviewer.viewer.batch import (
  Arrays,
  as_array,
  check_batch,
  check_metrics,
  count,
  frame_of,
  per_env_shape,
  positive,
  shape_of,
  state_arrays,
)

DEFAULT_CHUNK_LENGTH = 50  # frames per chunk (T)
DEFAULT_ENVS = 16  # envs shown when the viewer does not say (as the trainer)


# -- the pusher ----------------------------------------------------------------


class Pusher:
  """Streams a Python training loop's batched states to one viewer.

  The stream starts at the first push (``on_stream_start``: N, the pose
  kind and widths, reward terms and info entries are fixed then), chunks
  of ``chunk_length`` frames follow; :meth:`flush` sends a partial one and
  :meth:`close` ends the stream.

  Args:
    viewer: the viewer fed (its ``mode``, ``requested_envs`` and optional
      ``info_keys`` apply as in training).
  """

  def __init__(self, viewer: TrainingViewer):
    self._viewer = viewer
    self._env: Any = None
    self._streamer: Optional[Streamer] = None
    self._buffer: List[Arrays] = []  # frames of the next chunk
    self._steps = 0  # env steps done (after the newest push)
    self._buffered_steps = 0  # env steps after the newest buffered frame
    self._closed = False

  @property
  def info(self) -> Optional[StreamInfo]:
    """The running stream's info (None before the first push)."""
    return None if self._streamer is None else self._streamer.info

  @property
  def env_steps(self) -> int:
    return self._steps

  def note_env(self, env: Any) -> None:
    """The env trained (from ``viewer.init``): its ``dt``, and its model's
    ``nq`` to check pushes against."""
    self._env = env

  # -- the loop's calls --------------------------------------------------------

  def push(
    self,
    state: Any,
    *,
    env_steps: Optional[int] = None,
    dt: Optional[float] = None,
    env: Any = None,
    chunk_length: Optional[int] = None,
  ) -> None:
    """Stream a batched env state from a Python training loop, after each
    step of all envs: brax ``envs.State`` or a MuJoCo Playground state,
    device or numpy arrays. Every ``chunk_length`` pushes (default 50) make
    one chunk. ``env_steps``: steps done (default: counted, the batch per
    push); ``dt``: simulated seconds per push (default: ``env.dt``, the env
    given here or to ``viewer.init``). Off mode returns at once, copying
    nothing. See docs/api.md, "Python training loops"."""
    self._check_open()
    if self._skip(getattr(state, "reward", None), env_steps):
      return
    env = env if env is not None else self._env
    self._add(state_arrays(state, env), env_steps, dt, env, chunk_length)

  def push_arrays(
    self,
    *,
    reward: Any,
    done: Any,
    qpos: Any = None,
    truncation: Any = None,
    metrics: Optional[Mapping[str, Any]] = None,
    mocap_pos: Any = None,
    mocap_quat: Any = None,
    info: Optional[Mapping[str, Any]] = None,
    link_pos: Any = None,
    link_rot: Any = None,
    env_steps: Optional[int] = None,
    dt: Optional[float] = None,
    env: Any = None,
    chunk_length: Optional[int] = None,
  ) -> None:
    """:meth:`push` from plain arrays, each with the batch first: ``qpos
    (B, nq)`` (or ``link_pos (B, L, 3)`` + ``link_rot (B, L, 4)``),
    ``reward``/``done``/``truncation (B,)``, reward terms ``(B,)``, mocap
    ``(B, nmocap, 3/4)``, ``info`` entries ``(B,)`` or ``(B, k)``."""
    self._check_open()
    if self._skip(reward, env_steps):
      return
    arrays: Arrays = dict(
      reward=as_array(reward),
      done=as_array(done),
      truncation=as_array(truncation),
      metrics={k: as_array(v) for k, v in (metrics or {}).items()},
      info={k: as_array(v) for k, v in flat_info(info or {}).items()},
    )
    if (qpos is None) == (link_pos is None and link_rot is None):
      raise ValueError("push_arrays needs qpos, or link_pos and link_rot.")
    if qpos is not None:
      arrays["qpos"] = as_array(qpos)
    else:
      arrays["link_pos"], arrays["link_rot"] = (
        as_array(link_pos),
        as_array(link_rot),
      )
    if (mocap_pos is None) != (mocap_quat is None):
      raise ValueError("push_arrays needs mocap_pos and mocap_quat together.")
    if mocap_pos is not None:
      arrays["mocap_pos"] = as_array(mocap_pos)
      arrays["mocap_quat"] = as_array(mocap_quat)
    self._add(arrays, env_steps, dt, env, chunk_length)

  def log(self, env_steps: int, metrics: Mapping[str, Any]) -> None:
    """Training curves from a Python loop: numbers at ``env_steps``
    (non-finite ones left out; ``on_progress``)."""
    self._check_open()
    steps, clean = count(env_steps, "env_steps"), check_metrics(metrics)
    if self._streamer is not None:
      self._streamer.progress(steps, clean)
      return
    try:
      self._viewer.on_progress(steps, clean)
    except Exception as err:  # the viewer never takes training down
      warnings.warn(
        f"braxviewer: the viewer raised in on_progress ({err!r}).",
        ViewerFailure,
        stacklevel=3,
      )

  def flush(self) -> None:
    """Send the frames buffered so far as a (shorter) chunk."""
    self._check_open()
    self._send()

  def close(self) -> None:
    """Send what is buffered and end the stream; later pushes raise."""
    if self._closed:
      return
    self._closed = True
    if self._streamer is not None:
      self._send()
      self._streamer.end()

  # -- inside --------------------------------------------------------------------

  def _check_open(self) -> None:
    if self._closed:
      raise RuntimeError(
        "push: this viewer was closed; pushes, logs and flushes need an"
        " open viewer (make a new one)."
      )

  def _batch(self, reward: Any) -> int:
    shape = shape_of(reward) if reward is not None else ()
    if len(shape) != 1 or shape[0] < 1:
      raise ValueError(
        f"push: reward needs shape (batch,), got"
        f" {shape if reward is not None else None}."
      )
    return int(shape[0])

  def _skip(self, reward: Any, env_steps: Optional[int]) -> bool:
    """Off (or failed) once the stream runs: count the steps, send what
    is buffered, read nothing else."""
    streamer = self._streamer
    if streamer is None or streamer.mode() != Mode.OFF:
      return False
    batch = self._batch(reward)
    self._steps = (
      count(env_steps, "env_steps")
      if env_steps is not None
      else self._steps + batch
    )
    self._send()
    return True

  def _add(
    self,
    arrays: Arrays,
    env_steps: Optional[int],
    dt: Optional[float],
    env: Any,
    chunk_length: Optional[int],
  ) -> None:
    batch = self._batch(arrays["reward"])
    steps = (
      count(env_steps, "env_steps")
      if env_steps is not None
      else self._steps + batch
    )
    streamer = self._streamer
    if streamer is None:
      info = self._stream_info(arrays, batch, dt, env, chunk_length)
      check_batch(arrays, batch, info)
      streamer = self._streamer = Streamer(self._viewer, info, 0)
      streamer.start()
      off = streamer.mode() == Mode.OFF
    else:  # not off: _skip read the mode
      info, off = streamer.info, False
      if dt is not None and positive(dt, "dt") != info.dt:
        raise ValueError(f"push: dt is {info.dt} for this stream, not {dt}.")
      if chunk_length is not None and chunk_length != info.chunk_length:
        raise ValueError(
          f"push: chunk_length is {info.chunk_length} for this stream"
          f" (fixed at the first push), not {chunk_length}."
        )
      check_batch(arrays, batch, info)
    self._steps = steps
    if off:
      return
    self._buffer.append(frame_of(arrays, info))
    self._buffered_steps = steps
    if len(self._buffer) >= info.chunk_length:
      self._send()

  def _stream_info(
    self,
    arrays: Arrays,
    batch: int,
    dt: Optional[float],
    env: Any,
    chunk_length: Optional[int],
  ) -> StreamInfo:
    """What the first push fixes for the stream."""
    if dt is None:
      dt = getattr(env, "dt", None)
      if dt is None:
        raise ValueError(
          "push: the first push needs dt= (simulated seconds between"
          " pushes) or env= (an env with a dt), or viewer.init(env)."
        )
    length = count(
      DEFAULT_CHUNK_LENGTH if chunk_length is None else chunk_length,
      "chunk_length",
    )
    if length < 1:
      raise ValueError("chunk_length must be at least 1.")
    requested = self._viewer.requested_envs()
    n = min(requested or DEFAULT_ENVS, batch)  # a smaller batch: fewer shown
    if "qpos" in arrays:
      shape = shape_of(arrays["qpos"])
      if len(shape) != 2:
        raise ValueError(f"push: qpos needs shape (batch, nq), got {shape}.")
      nq, links = shape[1], None
      model = find_mj_model(env) if env is not None else None
      if model is not None and nq != model.nq:
        raise ValueError(
          f"push: qpos has width {nq} but the env's model has nq="
          f"{model.nq}; push the states of the env given to the viewer."
        )
    else:
      shape = shape_of(arrays["link_pos"])
      if len(shape) != 3:
        raise ValueError(
          f"push: link_pos needs shape (batch, links, 3), got {shape}."
        )
      nq, links = None, shape[1]
    keys = choose_info_keys(
      arrays["info"], batch, getattr(self._viewer, "info_keys", None)
    )
    mocap = shape_of(arrays["mocap_pos"]) if "mocap_pos" in arrays else ()
    return StreamInfo(
      num_envs=n,
      num_train_envs=batch,
      envs_per_device=batch,
      kind="qpos" if nq is not None else "links",
      nq=nq,
      num_links=links,
      dt=positive(dt, "dt"),
      chunk_length=length,
      reward_terms=tuple(arrays["metrics"]),
      backend=getattr(env, "backend", None),
      nmocap=mocap[1] if len(mocap) == 3 else 0,
      info_keys=keys,
      info_shapes=tuple(per_env_shape(arrays["info"][k]) for k in keys),
    )

  def _send(self) -> None:
    if not self._buffer or self._streamer is None:
      return
    frames, self._buffer = self._buffer, []
    chunk = {
      k: (
        {n: np.stack([f[k][n] for f in frames]) for n in v}
        if isinstance(v, dict)
        else np.stack([f[k] for f in frames])
      )
      for k, v in frames[0].items()
    }
    # The trainer's own delivery: seq numbers, wall time, fault isolation.
    self._streamer.deliver(chunk, "train", self._buffered_steps)
