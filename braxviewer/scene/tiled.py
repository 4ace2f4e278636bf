"""Models that already hold several envs (the original ``concatenate_envs_xml``
usage), told apart from single-env models.

The original API had users build an env from a concatenated XML and pass it to
``viewer.init``. braxviewer tiles envs itself, so such a model is mapped back:
when it came from :meth:`WebViewerBatched.concatenate_envs_xml` in this
process, the single env given there is used, with the drawn values (sizes,
colours, materials, poses) of env 0 of the compiled tiled model, so what
the env simulates is drawn even where it was edited after compiling;
otherwise, once the trainer says how wide one env's qpos is, the tiled model
is drawn as one scene with the first envs' qpos laid side by side
(:class:`TiledPoses`).
"""

from __future__ import annotations

import copy
import dataclasses
import re
import threading
from typing import Any, List, Mapping, Optional, Tuple

import mujoco
import numpy as np

from braxviewer.core.frames import FrameChunk
from braxviewer.scene import grid
from braxviewer.scene import match as model_match
from braxviewer.scene.batched import BatchedScene, Poses
from braxviewer.scene.lookup import find_mj_model
from braxviewer.scene.source import load_source

_FREE = int(mujoco.mjtJoint.mjJNT_FREE)
_PREFIX = re.compile(r"^e(\d+)/")


@dataclasses.dataclass
class _Tiling:
  single: mujoco.MjModel
  copies: int


_lock = threading.Lock()
_known: List[_Tiling] = []


def remember(
  source: Any, num_envs: int, assets: Optional[Mapping[str, Any]] = None
) -> None:
  """Note that a tiled XML of ``num_envs`` copies of ``source`` (what
  ``concatenate_envs_xml`` took: XML, a path, an env or its model) was
  made."""
  single = (
    source if isinstance(source, mujoco.MjModel) else find_mj_model(source)
  )
  if single is None:
    try:
      single = load_source(source, assets).model
    except Exception:
      return
  with _lock:
    _known.append(_Tiling(single, int(num_envs)))
    del _known[:-8]


def untile(model: mujoco.MjModel) -> Tuple[mujoco.MjModel, int]:
  """``(single_model, copies)`` for a model made by ``concatenate_envs_xml``
  in this process; ``(model, 1)`` for anything else."""
  with _lock:
    known = list(reversed(_known))
  for tiling in known:
    s, k = tiling.single, tiling.copies
    if (
      k > 1
      and model.nq == k * s.nq
      and model.nu == k * s.nu
      and (model.nbody >= k * (s.nbody - 1) + 1)
    ):
      return _as_compiled(model, s, k), k
  return model, 1


def _as_compiled(
  tiled: mujoco.MjModel, single: mujoco.MjModel, copies: int
) -> mujoco.MjModel:
  """``single`` with env 0's drawn values from the compiled ``tiled``."""
  floors = [g for g in range(single.ngeom) if grid.is_floor(single, g)]
  world = int(np.sum(single.geom_bodyid == 0))
  tiled_world = int(np.sum(tiled.geom_bodyid == 0))
  if tiled_world != len(floors) + copies * (world - len(floors)):
    floors = []  # per-env floors (layers): nothing shared
  out = copy.copy(single)
  if model_match.copy_env_back(tiled, out, copies, floors):
    return out
  return single


def prefixed_copies(model: mujoco.MjModel) -> int:
  """Envs in a model whose bodies carry ``concatenate_envs_xml``'s ``e{i}/``
  prefixes (1 when not tiled that way)."""
  found = set()
  for body in range(1, model.nbody):
    name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_BODY, body) or ""
    match = _PREFIX.match(name)
    if not match:
      return 1
    found.add(int(match.group(1)))
  k = len(found)
  return k if k > 1 and found == set(range(k)) else 1


def copies_by_width(model: mujoco.MjModel, nq: Optional[int]) -> int:
  """How many envs of qpos width ``nq`` the model holds (1 when not tiled)."""
  if not nq or model.nq == nq or model.nq % nq:
    return 1
  return model.nq // nq


class TiledPoses:
  """Poses of a tiled model from the first ``copies`` streamed envs.

  Wraps a :class:`braxviewer.scene.batched.BatchedScene` of the tiled model with one
  env; free-joint roots (which ignore the tile's frame) get their tile's
  offset back from the tiled model's rest pose. ``num_envs`` is the number
  of streamed envs it takes (one scene is drawn).
  """

  def __init__(self, batched: BatchedScene, copies: int):
    self._batched = batched
    model = batched.single_model
    self.copies = copies
    self.num_envs = copies
    self.offsets = batched.offsets
    self.single_model = model
    width = model.nq // copies
    self._qpos0 = model.qpos0.copy()
    self._shift = np.zeros(model.nq)
    roots = [j for j in range(model.njnt) if model.jnt_type[j] == _FREE]
    if roots and len(roots) % copies == 0:
      per = len(roots) // copies
      for c in range(1, copies):
        for r in range(per):
          j0, jc = roots[r], roots[c * per + r]
          a0, ac = model.jnt_qposadr[j0], model.jnt_qposadr[jc]
          self._shift[ac : ac + 3] = (
            self._qpos0[ac : ac + 3] - self._qpos0[a0 : a0 + 3]
          )
    self._width = width

  def poses_from_qpos(self, qpos: np.ndarray) -> Poses:
    """``qpos (..., N, nq_single)`` -> poses of the one tiled env."""
    qpos = np.asarray(qpos)
    lead = qpos.shape[:-2]
    big = np.broadcast_to(self._qpos0, lead + (self._qpos0.size,)).copy()
    n = min(self.copies, qpos.shape[-2])
    m = n * self._width
    part = qpos[..., :n, :] + self._shift[:m].reshape(n, self._width)
    rest = big[..., :m].reshape(lead + (n, self._width))
    known = np.isfinite(part).all(axis=-1, keepdims=True)  # NaN: not streamed
    big[..., :m] = np.where(known, part, rest).reshape(lead + (m,))
    return self._batched.poses_from_qpos(big[..., None, :])

  def rest_poses(self) -> Poses:
    """Poses of the tiled model as laid out (every copy at rest)."""
    return self._batched.poses_from_qpos(self._qpos0[None, :])

  def poses(self, chunk: FrameChunk) -> Poses:
    if chunk.qpos is None:
      raise ValueError("A tiled model can only be drawn from qpos chunks.")
    return self.poses_from_qpos(chunk.qpos)
