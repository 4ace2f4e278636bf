"""Which ``state.info`` entries are streamed: one rule for the jit side
(:mod:`braxviewer.train.tap`) and the host side (:mod:`braxviewer.viewer.push`).

Automatic (``info_keys`` None): numeric entries with one value per env
(float, int or bool; not PRNG keys, not what the training wrappers keep for
themselves), at most :data:`INFO_MAX_WIDTH` numbers each and
:data:`INFO_BUDGET` all together, a velocity ``command`` first, then by
name. Works on anything with ``shape`` and ``dtype`` (numpy or device
arrays, tracers, abstract shapes). numpy only, no JAX.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

INFO_MAX_WIDTH = 4
INFO_BUDGET = 16
INFO_FIRST = "command"  # a velocity command (MuJoCo Playground joystick envs)
# What the training wrappers keep in state.info for themselves (brax's
# EpisodeWrapper, AutoResetWrapper and EvalWrapper; Playground's
# BraxAutoResetWrapper): never chosen automatically.
_BOOKKEEPING = ("steps", "truncation", "eval_metrics")
_BOOKKEEPING_PREFIXES = ("first_", "episode_", "AutoResetWrapper_")
_KEY_NAMES = ("rng", "key")  # PRNG keys, whatever their dtype


def flat_info(info: Any, prefix: str = "") -> Dict[str, Any]:
  """``state.info`` flattened: nested dicts' entries named ``a/b``."""
  out: Dict[str, Any] = {}
  if not isinstance(info, Mapping):
    return out
  for k, v in info.items():
    name = f"{prefix}{k}"
    if isinstance(v, Mapping):
      out.update(flat_info(v, name + "/"))
    else:
      out[name] = v
  return out


def _dtype(x: Any) -> Optional[np.dtype]:
  try:
    return np.dtype(getattr(x, "dtype", None))
  except TypeError:  # a typed PRNG key, or no dtype at all
    return None


def per_env_number(x: Any, batch: Optional[int]) -> bool:
  """A numeric array with one entry per env (leading axis = the batch)."""
  shape, dtype = getattr(x, "shape", None), _dtype(x)
  if batch is None or shape is None or dtype is None or len(shape) < 1:
    return False
  if shape[0] != batch:
    return False
  return dtype.kind in "fiub" or "float" in dtype.name  # bfloat16 too


def width(x: Any) -> int:
  """Numbers per env of a per-env entry."""
  return int(np.prod(x.shape[1:], dtype=np.int64))


def _bookkeeping(name: str) -> bool:
  top = name.split("/")[0]
  return top in _BOOKKEEPING or top.startswith(_BOOKKEEPING_PREFIXES)


def _prng_key(name: str, x: Any) -> bool:
  """A PRNG key: by name (``rng``, ``key``, ``*_rng``) or as raw key data
  (unsigned ints)."""
  ends = tuple("_" + k for k in _KEY_NAMES)
  if any(p in _KEY_NAMES or p.endswith(ends) for p in name.split("/")):
    return True
  dtype = _dtype(x)
  return dtype is not None and dtype.kind == "u"


def _describe(x: Any) -> str:
  shape, dtype = getattr(x, "shape", None), getattr(x, "dtype", None)
  if shape is None or dtype is None:
    return type(x).__name__
  return f"shape {tuple(shape)}, dtype {dtype}"


def choose_info_keys(
  info: Any,
  batch: Optional[int],
  info_keys: Optional[Sequence[str]] = None,
  strict: bool = True,
) -> Tuple[str, ...]:
  """The entries of a batched ``state.info`` (``batch`` envs) to stream.

  ``info_keys`` None chooses automatically (see the module); otherwise the
  given names, in order: ``a/b`` names an entry of a nested dict, a dict's
  name all of its per-env entries. ``()`` streams none.

  Raises:
    ValueError: with ``strict``, a name that is not a per-env numeric entry
      (listing those there are); without, such names are left out.
  """
  flat = flat_info(info)
  if info_keys is None:
    chosen: List[str] = []
    used = 0
    for name in sorted(flat, key=lambda k: (k != INFO_FIRST, k)):
      x = flat[name]
      if (
        per_env_number(x, batch)
        and not _prng_key(name, x)
        and not _bookkeeping(name)
        and 1 <= width(x) <= INFO_MAX_WIDTH
        and used + width(x) <= INFO_BUDGET
      ):
        chosen.append(name)
        used += width(x)
    return tuple(chosen)
  if isinstance(info_keys, str):
    info_keys = (info_keys,)
  available = sorted(k for k, v in flat.items() if per_env_number(v, batch))
  chosen = []
  for name in map(str, info_keys):
    under = [
      k
      for k in available
      if k.startswith(name + "/") and not _prng_key(k, flat[k])
    ]
    if name in flat and per_env_number(flat[name], batch):
      found = [name]
    elif name not in flat and under:
      found = under
    elif not strict:
      continue
    else:
      what = (
        f"is not a numeric array with one entry per env"
        f" ({_describe(flat[name])})"
        if name in flat
        else "is not in the env state's info"
      )
      raise ValueError(
        f"info_keys: {name!r} {what}. Entries that can be streamed: "
        + (", ".join(available) if available else "none")
        + "."
      )
    chosen.extend(k for k in found if k not in chosen)
  return tuple(chosen)
