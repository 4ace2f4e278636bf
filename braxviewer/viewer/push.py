"""Streaming from a Python training loop: ``viewer.push(state)``.

Trainers that call a jitted env step from Python (rsl_rl on MuJoCo
Playground through its brax wrapper, any hand-written loop) have no place
for the jit-side tap. :class:`Pusher` takes from each batched state what the
tap takes (:func:`braxviewer.train.tap.select_frame`: the first N envs' pose,
reward, done, truncation, reward terms, mocap state and the ``state.info``
entries of :func:`choose_info_keys`, the tap's rule), buffers T steps and
sends them as one :class:`~braxviewer.core.frames.FrameChunk` through a
:class:`~braxviewer.core.streamer.Streamer`, the trainer's own path (sequence
numbers, mode reads, fault isolation). No JAX: device arrays become numpy
through ``np.array``; in off mode nothing is read or copied.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Dict, List, Mapping, Optional, Tuple, cast
import warnings

import numpy as np

from braxviewer.core.frames import PoseKind
from braxviewer.core.info_keys import (
  choose_info_keys,
  flat_info,
  per_env_number,
  width,
)
from braxviewer.core.protocol import Mode, StreamInfo, TrainingViewer
from braxviewer.core.streamer import Streamer, ViewerFailure
from braxviewer.scene import lookup as model_lookup
from braxviewer.scene.lookup import find_mj_model

DEFAULT_CHUNK_LENGTH = 50  # frames per chunk (T)
DEFAULT_ENVS = 16  # envs shown when the viewer does not say (as the trainer)
LINK_BACKENDS = (
  "positional",
  "spring",
)  # as braxviewer.train.tap.LINK_BACKENDS
_LINK_MODULES = tuple(f"brax.{b}." for b in LINK_BACKENDS)


Arrays = Dict[str, Any]  # one push: full-batch arrays (device or numpy)


# -- what a state holds --------------------------------------------------------


def physics_state(state: Any) -> Any:
  """brax's ``pipeline_state`` or MuJoCo Playground's ``data``."""
  return model_lookup.physics_state(
    state, "Push a batched env state, or use push_arrays(qpos=..., ...)."
  )


def pose_kind(physics: Any, env: Any = None) -> PoseKind:
  """``"links"`` for brax positional/spring (their ``q`` does not reproduce
  the pose), known by the env's backend or the physics state's type."""
  if getattr(env, "backend", None) in LINK_BACKENDS:
    return "links"
  module = type(physics).__module__ + "."
  return "links" if module.startswith(_LINK_MODULES) else "qpos"


def _shape(x: Any) -> Tuple[int, ...]:
  shape = getattr(x, "shape", None)
  return tuple(shape) if shape is not None else np.shape(x)


def _mocap(physics: Any, batch: int) -> Arrays:
  """Mocap positions and orientations, where the physics state has mocap
  bodies (as the tap checks them)."""
  pos = getattr(physics, "mocap_pos", None)
  quat = getattr(physics, "mocap_quat", None)
  if pos is None or quat is None:
    return {}
  ps, qs = _shape(pos), _shape(quat)
  if len(ps) != 3 or ps[0] != batch or ps[1] < 1 or ps[2] != 3:
    return {}
  if qs != ps[:2] + (4,):
    return {}
  return {"mocap_pos": pos, "mocap_quat": quat}


def state_arrays(state: Any, env: Any = None) -> Arrays:
  """What :func:`braxviewer.train.tap.select_frame` reads of a batched state, all
  envs, nothing copied; ``info`` is the whole flattened ``state.info``."""
  physics = physics_state(state)
  reward = getattr(state, "reward", None)
  batch = _shape(reward)[:1]
  out: Arrays = {"reward": reward, "done": getattr(state, "done", None)}
  if pose_kind(physics, env) == "links":
    out["link_pos"], out["link_rot"] = physics.x.pos, physics.x.rot
  else:
    q = getattr(physics, "q", None)
    out["qpos"] = q if q is not None else getattr(physics, "qpos", None)
  if batch:
    out.update(_mocap(physics, batch[0]))
  info = getattr(state, "info", None) or {}
  out["truncation"] = (
    info.get("truncation") if isinstance(info, Mapping) else None
  )
  metrics = getattr(state, "metrics", None) or {}
  out["metrics"] = {
    k: v
    for k, v in metrics.items()
    if hasattr(v, "shape") and len(v.shape) == 1 and v.shape[:1] == batch
  }
  out["info"] = flat_info(info)
  return out


# -- checks --------------------------------------------------------------------


def _count(value: Any, name: str) -> int:
  if isinstance(value, bool) or not isinstance(value, numbers.Integral):
    raise ValueError(f"{name} must be a non-negative int, got {value!r}.")
  if int(value) < 0:
    raise ValueError(f"{name} must be a non-negative int, got {value!r}.")
  return int(value)


def _positive(value: Any, name: str) -> float:
  try:
    f = float(value)
  except (TypeError, ValueError):
    f = math.nan
  if not (math.isfinite(f) and f > 0):
    raise ValueError(f"{name} must be a positive number, got {value!r}.")
  return f


def _need(name: str, x: Any, want: Tuple[int, ...]) -> None:
  if x is None:
    raise ValueError(f"push: {name} is missing; it needs shape {want}.")
  got = _shape(x)
  if got != want:
    raise ValueError(
      f"push: {name} has shape {got}; it needs {want} (the batch first)."
    )


def check_metrics(metrics: Any) -> Dict[str, float]:
  """``metrics`` for :meth:`Pusher.log`: names to numbers (an array counts
  as its mean); non-finite values are left out (a NaN loss is training's
  news, not a wrong call).

  Raises:
    ValueError: not a mapping of names to numbers.
  """
  if not isinstance(metrics, Mapping):
    raise ValueError(
      f"log: metrics must be a mapping of names to numbers, got"
      f" {type(metrics).__name__}."
    )
  out = {}
  for k, v in metrics.items():
    try:
      f = float(np.mean(np.asarray(v, dtype=np.float64)))
    except (TypeError, ValueError):
      raise ValueError(
        f"log: metric {k!r} is not a number ({type(v).__name__})."
      ) from None
    if not isinstance(k, str) or not k:
      raise ValueError(f"log: metric names must be non-empty str, got {k!r}.")
    if math.isfinite(f):
      out[k] = f
  return out


def _array(x: Any) -> Any:
  """An array as given (device or numpy), or a list as numpy."""
  return x if x is None or hasattr(x, "shape") else np.asarray(x)


def _take(x: Any, n: int) -> np.ndarray:
  """The first ``n`` envs as a float32 numpy copy (device arrays are sliced
  on the device first: only N envs travel)."""
  return np.array(x[:n], dtype=np.float32)


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
      reward=_array(reward),
      done=_array(done),
      truncation=_array(truncation),
      metrics={k: _array(v) for k, v in (metrics or {}).items()},
      info={k: _array(v) for k, v in flat_info(info or {}).items()},
    )
    if (qpos is None) == (link_pos is None and link_rot is None):
      raise ValueError("push_arrays needs qpos, or link_pos and link_rot.")
    if qpos is not None:
      arrays["qpos"] = _array(qpos)
    else:
      arrays["link_pos"], arrays["link_rot"] = (
        _array(link_pos),
        _array(link_rot),
      )
    if (mocap_pos is None) != (mocap_quat is None):
      raise ValueError("push_arrays needs mocap_pos and mocap_quat together.")
    if mocap_pos is not None:
      arrays["mocap_pos"] = _array(mocap_pos)
      arrays["mocap_quat"] = _array(mocap_quat)
    self._add(arrays, env_steps, dt, env, chunk_length)

  def log(self, env_steps: int, metrics: Mapping[str, Any]) -> None:
    """Training curves from a Python loop: numbers at ``env_steps``
    (non-finite ones left out; ``on_progress``)."""
    self._check_open()
    steps, clean = _count(env_steps, "env_steps"), check_metrics(metrics)
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
    shape = _shape(reward) if reward is not None else ()
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
      _count(env_steps, "env_steps")
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
      _count(env_steps, "env_steps")
      if env_steps is not None
      else self._steps + batch
    )
    streamer = self._streamer
    if streamer is None:
      info = self._stream_info(arrays, batch, dt, env, chunk_length)
      _check(arrays, batch, info)
      streamer = self._streamer = Streamer(self._viewer, info, 0)
      streamer.start()
      off = streamer.mode() == Mode.OFF
    else:  # not off: _skip read the mode
      info, off = streamer.info, False
      if dt is not None and _positive(dt, "dt") != info.dt:
        raise ValueError(f"push: dt is {info.dt} for this stream, not {dt}.")
      if chunk_length is not None and chunk_length != info.chunk_length:
        raise ValueError(
          f"push: chunk_length is {info.chunk_length} for this stream"
          f" (fixed at the first push), not {chunk_length}."
        )
      _check(arrays, batch, info)
    self._steps = steps
    if off:
      return
    self._buffer.append(_frame(arrays, info))
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
    length = _count(
      DEFAULT_CHUNK_LENGTH if chunk_length is None else chunk_length,
      "chunk_length",
    )
    if length < 1:
      raise ValueError("chunk_length must be at least 1.")
    requested = self._viewer.requested_envs()
    n = min(requested or DEFAULT_ENVS, batch)  # a smaller batch: fewer shown
    if "qpos" in arrays:
      shape = _shape(arrays["qpos"])
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
      shape = _shape(arrays["link_pos"])
      if len(shape) != 3:
        raise ValueError(
          f"push: link_pos needs shape (batch, links, 3), got {shape}."
        )
      nq, links = None, shape[1]
    keys = choose_info_keys(
      arrays["info"], batch, getattr(self._viewer, "info_keys", None)
    )
    mocap = _shape(arrays["mocap_pos"]) if "mocap_pos" in arrays else ()
    return StreamInfo(
      num_envs=n,
      num_train_envs=batch,
      envs_per_device=batch,
      kind="qpos" if nq is not None else "links",
      nq=nq,
      num_links=links,
      dt=_positive(dt, "dt"),
      chunk_length=length,
      reward_terms=tuple(arrays["metrics"]),
      backend=getattr(env, "backend", None),
      nmocap=mocap[1] if len(mocap) == 3 else 0,
      info_keys=keys,
      info_shapes=tuple(_per_env(arrays["info"][k]) for k in keys),
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


def _per_env(x: Any) -> Tuple[int, ...]:
  """An info entry's streamed shape per env: () or (k,)."""
  return () if len(_shape(x)) == 1 else (width(x),)


def _check(arrays: Arrays, batch: int, info: StreamInfo) -> None:
  """Every array of a push against the stream's shapes (no copy)."""
  if batch < info.num_envs:
    raise ValueError(
      f"push: the batch has {batch} envs; this stream shows the first"
      f" {info.num_envs} (fixed at the first push)."
    )
  b = (batch,)
  _need("done", arrays["done"], b)
  if arrays["truncation"] is not None:
    _need("truncation", arrays["truncation"], b)
  if info.kind == "qpos":
    if "qpos" not in arrays:
      raise ValueError("push: this stream streams qpos (fixed at the start).")
    _need("qpos", arrays["qpos"], (batch, cast(int, info.nq)))
  else:
    if "link_pos" not in arrays:
      raise ValueError("push: this stream streams link poses, not qpos.")
    links = cast(int, info.num_links)
    _need("link_pos", arrays["link_pos"], (batch, links, 3))
    _need("link_rot", arrays["link_rot"], (batch, links, 4))
  if info.nmocap:
    _need("mocap_pos", arrays.get("mocap_pos"), (batch, info.nmocap, 3))
    _need("mocap_quat", arrays.get("mocap_quat"), (batch, info.nmocap, 4))
  elif "mocap_pos" in arrays:
    raise ValueError("push: mocap arrays came after a start without them.")
  metrics = arrays["metrics"]
  if set(metrics) != set(info.reward_terms):
    raise ValueError(
      f"push: the metrics are {sorted(metrics)}; this stream streams"
      f" {sorted(info.reward_terms)} (fixed at the first push)."
    )
  for k in info.reward_terms:
    _need(f"metrics[{k!r}]", metrics[k], b)
  for k, per_env in zip(info.info_keys, info.info_shapes):
    x = arrays["info"].get(k)
    if x is None or not per_env_number(x, batch) or _per_env(x) != per_env:
      raise ValueError(
        f"push: info {k!r} needs {per_env or 'one number'} per env with the"
        f" batch first; got {None if x is None else _shape(x)}."
      )


def _frame(arrays: Arrays, info: StreamInfo) -> Arrays:
  """The first N envs of a checked push, float32 numpy copies."""
  n = info.num_envs
  pose = ("qpos",) if info.kind == "qpos" else ("link_pos", "link_rot")
  mocap = ("mocap_pos", "mocap_quat") if info.nmocap else ()
  frame: Arrays = {k: _take(arrays[k], n) for k in pose + mocap}
  frame["reward"] = _take(arrays["reward"], n)
  frame["done"] = _take(arrays["done"], n)
  trunc = arrays["truncation"]
  frame["truncation"] = (
    _take(trunc, n) if trunc is not None else np.zeros(n, np.float32)
  )
  frame["metrics"] = {
    k: _take(arrays["metrics"][k], n) for k in info.reward_terms
  }
  frame["info"] = {
    k: _take(arrays["info"][k], n).reshape((n,) + shape)
    for k, shape in zip(info.info_keys, info.info_shapes)
  }
  return frame
