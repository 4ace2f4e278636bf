"""The jit side of the stream: what leaves the device, and when.

Inside a jitted unroll (a ``lax.scan`` over env steps whose body sees the whole
batched state, outside vmap) :func:`select_frame` slices the first N envs of
each step. After the unrolls of a training step (or an eval rollout),
:func:`emit` sends the stacked ``(T, N, ...)`` chunk to the host in ONE
callback, gated by ``lax.cond`` on a runtime flag array (off
means nothing leaves the device, and changing the flag needs no recompile):
its low bits are the mode, the rest the pmap axis index of the one device
that sends when running under ``pmap``
(:func:`braxviewer.core.protocol.encode_flag`).

Besides the pose, a frame holds the mocap bodies' state when the physics
state has any (goals and targets an env moves: MuJoCo Playground's
``data.mocap_pos``) and a few numeric per-env ``state.info`` entries
(:func:`choose_info_keys`: a velocity ``command`` first, within a budget of
:data:`INFO_BUDGET` floats per env). Reading them changes nothing the env or
the learner computes.

This module knows nothing of viewers or the web: the host side hands it a
plain function that receives numpy arrays.
"""

from __future__ import annotations

from typing import (
  Any,
  Callable,
  Dict,
  Mapping,
  NamedTuple,
  Optional,
  Sequence,
  Tuple,
)

from brax.training import acting
import jax
import jax.numpy as jnp
import numpy as np

from braxviewer.core import info_keys as info_choice
from braxviewer.core.frames import PoseKind
from braxviewer.core.protocol import MODE_BITS, MODE_MASK
from braxviewer.scene.lookup import physics_state

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
  nmocap: int = 0  # mocap bodies streamed per env
  info_keys: Tuple[str, ...] = ()  # the streamed state.info entries, in order
  info_shapes: Tuple[Tuple[int, ...], ...] = ()  # each: () or (k,) per env


def describe(
  state: Any, kind: str, info_keys: Optional[Sequence[str]] = None
) -> FrameSpec:
  """What :func:`select_frame` streams of a batched env state (an abstract
  trace: no device work).

  Raises:
    ValueError: an ``info_keys`` name the state's info does not hold (or
      holds as something that is not a per-env number), listing those it
      does.
  """
  keys = choose_info_keys(state, info_keys)
  frame = jax.eval_shape(
    lambda s: select_frame(s, 1, kind, info_keys=keys), state
  )
  return FrameSpec(
    nq=int(frame["qpos"].shape[-1]) if "qpos" in frame else None,
    num_links=(
      int(frame["link_pos"].shape[-2]) if "link_pos" in frame else None
    ),
    reward_terms=tuple(frame["metrics"]),
    nmocap=(int(frame["mocap_pos"].shape[-2]) if "mocap_pos" in frame else 0),
    info_keys=keys,
    info_shapes=tuple(tuple(frame["info"][k].shape[1:]) for k in keys),
  )


# -- state.info --------------------------------------------------------------


def _batch_size(state: Any) -> Optional[int]:
  shape = getattr(getattr(state, "reward", None), "shape", None)
  return int(shape[0]) if shape else None


def choose_info_keys(
  state: Any, info_keys: Optional[Sequence[str]] = None, strict: bool = True
) -> Tuple[str, ...]:
  """The ``state.info`` entries to stream of a batched env state (the rule
  of :func:`braxviewer.core.info_keys.choose_info_keys`).

  Raises:
    ValueError: with ``strict``, a name that is not a per-env numeric entry
      (listing those there are); without, such names are left out.
  """
  return info_choice.choose_info_keys(
    getattr(state, "info", None), _batch_size(state), info_keys, strict
  )


def _info_frame(
  state: Any, info_keys: Tuple[str, ...], sl: Callable[[Any], jax.Array]
) -> Dict[str, jax.Array]:
  """The chosen info entries of the first envs, float32, ``(N,)``/``(N, k)``."""
  flat = info_choice.flat_info(getattr(state, "info", None))
  out = {}
  for name in info_keys:
    x = sl(flat[name])
    if x.ndim > 2:
      x = jnp.reshape(x, x.shape[:1] + (-1,))
    out[name] = _float(x)
  return out


def _mocap_frame(
  physics: Any, batch: Optional[int], sl: Callable[[Any], jax.Array]
) -> Dict[str, jax.Array]:
  """Mocap positions and orientations of the first envs, when the physics
  state has mocap bodies (mjx ``Data``: MuJoCo Playground, brax ``mjx``)."""
  pos = getattr(physics, "mocap_pos", None)
  quat = getattr(physics, "mocap_quat", None)
  pshape = getattr(pos, "shape", None)
  qshape = getattr(quat, "shape", None)
  if (
    batch is None
    or pshape is None
    or qshape is None
    or len(pshape) != 3
    or pshape[0] != batch
    or pshape[1] < 1
    or pshape[2] != 3
    or tuple(qshape) != tuple(pshape[:2]) + (4,)
  ):
    return {}
  return {"mocap_pos": _float(sl(pos)), "mocap_quat": _float(sl(quat))}


def select_frame(
  state: Any,
  num_envs: int,
  kind: str,
  info_keys: Optional[Sequence[str]] = None,
  strict: bool = True,
) -> Frame:
  """The streamed part of one batched env state: first ``num_envs`` envs.

  Works for brax ``envs.State`` (``pipeline_state``) and MuJoCo Playground
  states (``data``). Called at trace time inside the unroll's scan body.
  Holds the pose, ``mocap_pos``/``mocap_quat`` when the physics state has
  mocap bodies, reward, done, truncation, the reward terms, and ``info``:
  the ``state.info`` entries of :func:`choose_info_keys` (``info_keys`` and
  ``strict`` as there).
  """

  def sl(x: jax.Array) -> jax.Array:
    return x[:num_envs]

  frame: Frame = {}
  pipeline_state = physics_state(state)
  batch = _batch_size(state)
  if kind == "links":
    frame["link_pos"] = _float(sl(pipeline_state.x.pos))
    frame["link_rot"] = _float(sl(pipeline_state.x.rot))
  else:
    q = getattr(pipeline_state, "q", None)
    if q is None:
      q = pipeline_state.qpos
    frame["qpos"] = _float(sl(q))
  frame.update(_mocap_frame(pipeline_state, batch, sl))
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
  keys = choose_info_keys(state, info_keys, strict=strict)
  frame["info"] = _info_frame(state, keys, sl)
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


def flag_mode(flag: Any) -> jax.Array:
  """The mode of a runtime flag (0 off, 1 live, 2 sync), traceable."""
  return jnp.bitwise_and(jnp.asarray(flag, jnp.int32), MODE_MASK)


def flag_device(flag: Any) -> jax.Array:
  """The pmap axis index of the device a runtime flag streams from."""
  return jnp.right_shift(jnp.asarray(flag, jnp.int32), MODE_BITS)


def emit(
  flag: Any,
  chunk: Frame,
  sink: HostSink,
  *extra: jax.Array,
  axis_name: Optional[str] = None,
) -> None:
  """Send ``chunk`` (and ``extra`` scalars) to ``sink`` when the mode of
  ``flag`` (:func:`flag_mode`) is not off.

  One host callback per call, carrying the chunk packed into one flat array
  (a callback's cost grows with its number of arrays: JAX places each on the
  host device; one array instead of a dozen cuts it ~3x). ``sink`` receives
  numpy arrays in the original structure. Under ``pmap`` pass ``axis_name``
  so only the device of the flag (:func:`flag_device`) sends; without it
  the device bits are ignored.
  """
  on = flag_mode(flag) > 0
  if axis_name is not None:
    here = jax.lax.axis_index(axis_name) == flag_device(flag)
    on = jnp.logical_and(on, here)
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
  info_keys: Optional[Sequence[str]] = (),
  strict_info: bool = True,
):
  """``brax.training.acting.generate_unroll`` plus the streamed frames.

  Same key schedule and transitions as brax's (it calls brax's public
  ``acting.actor_step``), so what is learned does not change. Returns
  ``(final_state, transitions, frames)``; ``frames`` is None when
  ``num_view_envs`` is 0, else the stacked ``(T, N, ...)`` chunk, with the
  ``state.info`` entries ``info_keys`` (see :func:`select_frame`; ``()``
  none, None the automatic choice).
  """

  def step(carry, unused_t):
    state, current_key = carry
    current_key, next_key = jax.random.split(current_key)
    nstate, transition = acting.actor_step(
      env, state, policy, current_key, extra_fields=extra_fields
    )
    frame = (
      select_frame(
        nstate, num_view_envs, kind, info_keys=info_keys, strict=strict_info
      )
      if num_view_envs
      else None
    )
    return (nstate, next_key), (transition, frame)

  (final_state, _), (data, frames) = jax.lax.scan(
    step, (env_state, key), (), length=unroll_length
  )
  return final_state, data, frames
