"""The jit side of the stream: what leaves the device, and when.

Inside a jitted unroll (a ``lax.scan`` over env steps whose body sees the whole
batched state, outside vmap) :func:`select_frame` slices the first N envs of
each step. After the unrolls of a training step (or an eval rollout),
:func:`emit` sends the stacked ``(T, N, ...)`` chunk to the host in ONE
callback, gated by ``lax.cond`` on a runtime flag array (off
means nothing leaves the device, and flipping the flag needs no recompile) and
on device 0 when running under ``pmap``.

This module knows nothing of viewers or the web: the host side hands it a
plain function that receives numpy arrays.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Mapping, NamedTuple, Optional, Tuple

from brax.training import acting
import jax
import jax.numpy as jnp
import numpy as np

from braxviewer.frames import PoseKind

Frame = Dict[str, Any]
HostSink = Callable[..., None]

LINK_BACKENDS = ("positional", "spring")


def pose_kind(env: Any) -> PoseKind:
  """``"links"`` for brax positional/spring (qpos does not reproduce the
  pose there), else ``"qpos"``."""
  backend = getattr(env, "backend", None)
  return "links" if backend in LINK_BACKENDS else "qpos"


def _float(x: jax.Array) -> jax.Array:
  return x.astype(jnp.float32)


class FrameSpec(NamedTuple):
  """The widths of what is streamed of an env."""

  nq: Optional[int]  # qpos width ("qpos" kind)
  num_links: Optional[int]  # links ("links" kind)
  reward_terms: Tuple[str, ...]  # the streamed state.metrics entries


def describe(state: Any, kind: str) -> FrameSpec:
  """What :func:`select_frame` streams of a batched env state (an abstract
  trace: no device work)."""
  frame = jax.eval_shape(lambda s: select_frame(s, 1, kind), state)
  return FrameSpec(
    nq=int(frame["qpos"].shape[-1]) if "qpos" in frame else None,
    num_links=(
      int(frame["link_pos"].shape[-2]) if "link_pos" in frame else None
    ),
    reward_terms=tuple(frame["metrics"]),
  )


def _physics_state(state: Any) -> Any:
  """The physics part of an env state: brax's ``pipeline_state`` or MuJoCo
  Playground's ``data``."""
  pipeline_state = getattr(state, "pipeline_state", None)
  if pipeline_state is None:
    pipeline_state = getattr(state, "data", None)
  if pipeline_state is None:
    raise ValueError(
      "The env state has neither `pipeline_state` (brax) nor `data`"
      " (MuJoCo Playground); braxviewer cannot find the pose to stream."
    )
  return pipeline_state


def select_frame(state: Any, num_envs: int, kind: str) -> Frame:
  """The streamed part of one batched env state: first ``num_envs`` envs.

  Works for brax ``envs.State`` (``pipeline_state``) and MuJoCo Playground
  states (``data``). Called at trace time inside the unroll's scan body.
  """

  def sl(x: jax.Array) -> jax.Array:
    return x[:num_envs]

  frame: Frame = {}
  pipeline_state = _physics_state(state)
  if kind == "links":
    frame["link_pos"] = _float(sl(pipeline_state.x.pos))
    frame["link_rot"] = _float(sl(pipeline_state.x.rot))
  else:
    q = getattr(pipeline_state, "q", None)
    if q is None:
      q = pipeline_state.qpos
    frame["qpos"] = _float(sl(q))
  frame["reward"] = _float(sl(state.reward))
  frame["done"] = _float(sl(state.done))
  info = getattr(state, "info", {}) or {}
  truncation = info.get("truncation") if isinstance(info, Mapping) else None
  frame["truncation"] = (
    _float(sl(truncation))
    if truncation is not None
    else jnp.zeros_like(frame["done"])
  )
  metrics = getattr(state, "metrics", {}) or {}
  frame["metrics"] = {
    k: _float(sl(v))
    for k, v in metrics.items()
    if hasattr(v, "shape")
    and v.shape[:1] == state.reward.shape[:1]
    and v.ndim == 1
  }
  return frame


def _packable(x: jax.Array) -> bool:
  return jnp.dtype(x.dtype).itemsize == 4


def _pack(leaves) -> jax.Array:
  """4-byte leaves as one flat float32 vector (ints bit-cast, so exact)."""
  parts = []
  for x in leaves:
    x = jnp.ravel(x)
    if x.dtype != jnp.float32:
      x = jax.lax.bitcast_convert_type(x, jnp.float32)
    parts.append(x)
  return jnp.concatenate(parts) if parts else jnp.zeros((0,), jnp.float32)


def _unpacker(leaves, treedef, packed_mask):
  """Host side of :func:`_pack`: numpy views of the original leaves."""
  specs = [(tuple(x.shape), jnp.dtype(x.dtype)) for x in leaves]

  def unpack(packed: np.ndarray, others):
    packed = np.asarray(packed)
    others = iter(others)
    out, offset = [], 0
    for (shape, dtype), is_packed in zip(specs, packed_mask):
      if not is_packed:
        out.append(np.asarray(next(others)))
        continue
      size = int(np.prod(shape, dtype=np.int64))
      part = packed[offset : offset + size]
      offset += size
      if dtype != np.float32:
        part = part.view(dtype)
      out.append(part.reshape(shape))
    return jax.tree.unflatten(treedef, out)

  return unpack


def emit(
  flag: jax.Array,
  chunk: Frame,
  sink: HostSink,
  *extra: jax.Array,
  axis_name: Optional[str] = None,
) -> None:
  """Send ``chunk`` (and ``extra`` scalars) to ``sink`` when ``flag > 0``.

  One host callback per call, carrying the chunk packed into one flat array
  (a callback's cost grows with its number of arrays: JAX places each on the
  host device; one array instead of a dozen cuts it ~3x). ``sink`` receives
  numpy arrays in the original structure. Under ``pmap`` pass ``axis_name``
  so only device 0 sends.
  """
  on = flag > 0
  if axis_name is not None:
    on = jnp.logical_and(on, jax.lax.axis_index(axis_name) == 0)
  leaves, treedef = jax.tree.flatten((chunk, extra))
  mask = [_packable(x) for x in leaves]
  unpack = _unpacker(leaves, treedef, mask)

  def host(packed, *others):
    chunk_, extra_ = unpack(packed, others)
    sink(chunk_, *extra_)

  def send(leaves):
    packed = _pack([x for x, m in zip(leaves, mask) if m])
    others = [x for x, m in zip(leaves, mask) if not m]
    jax.debug.callback(host, packed, *others)

  def skip(leaves):
    del leaves

  jax.lax.cond(on, send, skip, leaves)


def generate_unroll(
  env: Any,
  env_state: Any,
  policy: Callable[..., Any],
  key: jax.Array,
  unroll_length: int,
  extra_fields: tuple = (),
  num_view_envs: int = 0,
  kind: str = "qpos",
):
  """``brax.training.acting.generate_unroll`` plus the streamed frames.

  Same key schedule and transitions as brax's (it calls brax's public
  ``acting.actor_step``), so what is learned does not change. Returns
  ``(final_state, transitions, frames)``; ``frames`` is None when
  ``num_view_envs`` is 0, else the stacked ``(T, N, ...)`` chunk.
  """

  def step(carry, unused_t):
    state, current_key = carry
    current_key, next_key = jax.random.split(current_key)
    nstate, transition = acting.actor_step(
      env, state, policy, current_key, extra_fields=extra_fields
    )
    frame = select_frame(nstate, num_view_envs, kind) if num_view_envs else None
    return (nstate, next_key), (transition, frame)

  (final_state, _), (data, frames) = jax.lax.scan(
    step, (env_state, key), (), length=unroll_length
  )
  return final_state, data, frames
