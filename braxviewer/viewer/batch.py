"""What a pushed batch holds, and whether it is what the stream said.

The arrays :class:`~braxviewer.viewer.push.Pusher` takes from each batched
state (the first N envs' pose, reward, done, truncation, reward terms,
mocap state, ``state.info`` entries), the checks of a loop's values
(counts, shapes against the stream's info, metrics), and one frame cut from
a batch. numpy only: device arrays become numpy through ``np.array``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Dict, Mapping, Tuple, cast

import numpy as np

from braxviewer.core.frames import PoseKind
from braxviewer.core.info_keys import flat_info, per_env_number, width
from braxviewer.core.protocol import StreamInfo
from braxviewer.scene import lookup as model_lookup

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


def shape_of(x: Any) -> Tuple[int, ...]:
  shape = getattr(x, "shape", None)
  return tuple(shape) if shape is not None else np.shape(x)


def _mocap(physics: Any, batch: int) -> Arrays:
  """Mocap positions and orientations, where the physics state has mocap
  bodies (as the tap checks them)."""
  pos = getattr(physics, "mocap_pos", None)
  quat = getattr(physics, "mocap_quat", None)
  if pos is None or quat is None:
    return {}
  ps, qs = shape_of(pos), shape_of(quat)
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
  batch = shape_of(reward)[:1]
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


def count(value: Any, name: str) -> int:
  if isinstance(value, bool) or not isinstance(value, numbers.Integral):
    raise ValueError(f"{name} must be a non-negative int, got {value!r}.")
  if int(value) < 0:
    raise ValueError(f"{name} must be a non-negative int, got {value!r}.")
  return int(value)


def positive(value: Any, name: str) -> float:
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
  got = shape_of(x)
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


def as_array(x: Any) -> Any:
  """An array as given (device or numpy), or a list as numpy."""
  return x if x is None or hasattr(x, "shape") else np.asarray(x)


def _take(x: Any, n: int) -> np.ndarray:
  """The first ``n`` envs as a float32 numpy copy (device arrays are sliced
  on the device first: only N envs travel)."""
  return np.array(x[:n], dtype=np.float32)


def per_env_shape(x: Any) -> Tuple[int, ...]:
  """An info entry's streamed shape per env: () or (k,)."""
  return () if len(shape_of(x)) == 1 else (width(x),)


def check_batch(arrays: Arrays, batch: int, info: StreamInfo) -> None:
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
    if x is None or not per_env_number(x, batch) or per_env_shape(x) != per_env:
      raise ValueError(
        f"push: info {k!r} needs {per_env or 'one number'} per env with the"
        f" batch first; got {None if x is None else shape_of(x)}."
      )


def frame_of(arrays: Arrays, info: StreamInfo) -> Arrays:
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
