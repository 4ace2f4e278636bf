"""Make N copies of a model match the compiled model an env simulates.

Envs edit their model in code: before compiling (an ``MjSpec``) or after
(``model.geom_size[...] = ...``). No XML file holds what they simulate, so
an XML (or spec) that has the same *structure* is taken and then told the
compiled values:

* :func:`structure_mismatch`: whether a spec's model has the drawn structure
  of the env's model (bodies, joints, geoms, sites, mocap bodies);
* :func:`adopt_compiled`: the spec takes the compiled model's values
  (``MjSpec.copy_back`` for the real-valued fields, materials, meshes and
  groups by hand), so models and XML made from it are the env's;
* :func:`copy_compiled`: the drawn per-element fields of the env's model
  written into every copy of an N-env model laid out by
  :func:`braxviewer.scene.grid_xml.build_batched` (what ``copy_back`` could not
  express still ends up right in the N-env model).

numpy + mujoco only.
"""

from __future__ import annotations

from typing import List, Optional, Sequence

import mujoco
import numpy as np

_STRUCTURE = ("nbody", "njnt", "nq", "ngeom", "nsite", "nmocap")
_STRUCTURE_ARRAYS = (
  "body_parentid",
  "body_mocapid",
  "jnt_type",
  "geom_type",
  "geom_bodyid",
  "site_bodyid",
)
# Copied per element into every copy (drawn or posing fields).
_BODY_FIELDS = ("body_pos", "body_quat", "body_ipos", "body_iquat")
_GEOM_FIELDS = ("geom_size", "geom_rgba", "geom_pos", "geom_quat", "geom_group")
_SITE_FIELDS = ("site_size", "site_rgba", "site_pos", "site_quat", "site_group")


def structure_mismatch(
  model: mujoco.MjModel, compiled: mujoco.MjModel
) -> Optional[str]:
  """None when ``model`` has ``compiled``'s drawn structure, else what
  differs (for messages)."""
  for name in _STRUCTURE:
    a, b = getattr(model, name), getattr(compiled, name)
    if a != b:
      return f"{name} {a} != {b}"
  for name in _STRUCTURE_ARRAYS:
    if not np.array_equal(getattr(model, name), getattr(compiled, name)):
      return f"{name} differs"
  return None


def _name(model: mujoco.MjModel, kind: mujoco.mjtObj, index: int) -> str:
  if index < 0:
    return ""
  return mujoco.mj_id2name(model, kind, int(index)) or ""


def _adopt_references(
  spec: mujoco.MjSpec, model: mujoco.MjModel, compiled: mujoco.MjModel
) -> None:
  """Materials, meshes and groups that ``copy_back`` leaves alone."""
  mat = mujoco.mjtObj.mjOBJ_MATERIAL
  for element, prefix in ((spec.geoms, "geom"), (spec.sites, "site")):
    matid = getattr(compiled, f"{prefix}_matid")
    group = getattr(compiled, f"{prefix}_group")
    for item in element:
      i = item.id
      if i < 0:
        continue
      if matid[i] != getattr(model, f"{prefix}_matid")[i]:
        name = _name(compiled, mat, matid[i])
        if name or matid[i] < 0:
          item.material = name
      item.group = int(group[i])
  for geom in spec.geoms:
    i = geom.id
    if i >= 0 and compiled.geom_dataid[i] != model.geom_dataid[i]:
      if compiled.geom_type[i] == mujoco.mjtGeom.mjGEOM_MESH:
        name = _name(
          compiled, mujoco.mjtObj.mjOBJ_MESH, compiled.geom_dataid[i]
        )
        if name:
          geom.meshname = name


def adopt_compiled(
  spec: mujoco.MjSpec, model: mujoco.MjModel, compiled: mujoco.MjModel
) -> "tuple[mujoco.MjModel, str]":
  """Write ``compiled``'s values into ``spec`` (last compiled to ``model``,
  the same structure) and compile it again.

  Returns:
    The recompiled model and a note: empty when every value could be
    written, else why not (the N-env model still gets them through
    :func:`copy_compiled`).
  """
  note = ""
  meaninertia = spec.stat.meaninertia
  try:
    spec.copy_back(compiled)
  except Exception as err:  # MuJoCo: "incompatible models", a change it
    note = " ".join(str(err).split())  # cannot express in the spec
  spec.stat.meaninertia = meaninertia  # computed (MuJoCo deprecates it)
  _adopt_references(spec, model, compiled)
  return spec.compile(), note


def _block(adr: np.ndarray, num: np.ndarray, body: int) -> np.ndarray:
  return np.arange(adr[body], adr[body] + num[body])


def _per_body(
  model: mujoco.MjModel, kind: str
) -> "Optional[tuple[np.ndarray, np.ndarray]]":
  """First id and count of each body's geoms or sites (None when they are
  not grouped body by body, as MuJoCo compiles them)."""
  owner = getattr(model, f"{kind}_bodyid")
  if np.any(np.diff(owner) < 0):
    return None
  num = np.bincount(owner, minlength=model.nbody)
  adr = np.concatenate([[0], np.cumsum(num)[:-1]])
  return adr, num


def _world_items(
  count: int, shared: Sequence[int], num_envs: int, batched_count: int
) -> Optional[List[np.ndarray]]:
  """Per env, the batched ids of the single world body's items (shared
  ones stay once, first; each env's follow in env order)."""
  own = np.setdiff1d(np.arange(count), np.asarray(shared, int))
  if batched_count != len(shared) + num_envs * len(own):
    return None
  out = []
  for env in range(num_envs):
    ids = np.full(count, -1)
    ids[own] = len(shared) + env * len(own) + np.arange(len(own))
    ids[list(shared)] = np.arange(len(shared))
    out.append(ids)
  return out


def _item_maps(
  single: mujoco.MjModel,
  batched: mujoco.MjModel,
  num_envs: int,
  kind: str,
  shared: Sequence[int],
) -> Optional[List[np.ndarray]]:
  """Per env: single item id -> batched item id (``kind``: geom or site)."""
  ours, theirs = _per_body(single, kind), _per_body(batched, kind)
  if ours is None or theirs is None:
    return None
  (adr, num), (badr, bnum) = ours, theirs
  world = _world_items(int(num[0]), shared, num_envs, int(bnum[0]))
  if world is None:
    return None
  nb = single.nbody - 1
  maps = []
  for env in range(num_envs):
    ids = np.full(getattr(single, f"n{kind}"), -1)
    if num[0]:
      ids[_block(adr, num, 0)] = badr[0] + world[env]
    for body in range(1, single.nbody):
      other = 1 + env * nb + body - 1
      if bnum[other] != num[body]:
        return None
      ids[_block(adr, num, body)] = _block(badr, bnum, other)
    maps.append(ids)
  return maps


def _material_map(
  single: mujoco.MjModel, batched: mujoco.MjModel, env: int
) -> np.ndarray:
  """Single material id -> batched id in env ``env`` (-1: -1; unnamed or
  not found: -2, left as it is)."""
  mat = mujoco.mjtObj.mjOBJ_MATERIAL
  out = np.full(single.nmat + 1, -2)
  out[-1] = -1  # index -1
  for k in range(single.nmat):
    name = _name(single, mat, k)
    if not name:
      continue
    for candidate in (f"e{env}/{name}", name):
      found = mujoco.mj_name2id(batched, mat, candidate)
      if found >= 0:
        out[k] = found
        break
  return out


def copy_compiled(
  single: mujoco.MjModel,
  batched: mujoco.MjModel,
  offsets: np.ndarray,
  shared_geoms: Sequence[int] = (),
) -> bool:
  """Write ``single``'s drawn per-element values into every env of
  ``batched`` (bodies, geoms and sites; world-body items and root bodies at
  their env's offset). ``shared_geoms``: single geom ids kept once (floors).

  Returns:
    False, changing nothing, when ``batched`` is not laid out env by env.
  """
  n = len(offsets)
  nb = single.nbody - 1
  geoms = _item_maps(single, batched, n, "geom", shared_geoms)
  sites = _item_maps(single, batched, n, "site", ())
  if geoms is None or sites is None or batched.nbody != 1 + n * nb:
    return False
  shared = np.zeros(single.ngeom, bool)
  shared[list(shared_geoms)] = True
  for env, offset in enumerate(offsets):
    bodies = 1 + env * nb + np.arange(nb)
    for field in _BODY_FIELDS:
      getattr(batched, field)[bodies] = getattr(single, field)[1:]
    roots = bodies[single.body_parentid[1:] == 0]
    batched.body_pos[roots] += offset
    for kind, ids, fields in (
      ("geom", geoms[env], _GEOM_FIELDS),
      ("site", sites[env], _SITE_FIELDS),
    ):
      keep = ids >= 0
      if kind == "geom":
        keep &= ~shared  # floors: placed and sized for the whole grid
      src, dst = np.flatnonzero(keep), ids[keep]
      for field in fields:
        getattr(batched, field)[dst] = getattr(single, field)[src]
      on_world = getattr(single, f"{kind}_bodyid")[src] == 0
      getattr(batched, f"{kind}_pos")[dst[on_world]] += offset
      mats = _material_map(single, batched, env)
      wanted = mats[getattr(single, f"{kind}_matid")[src]]
      known = wanted > -2
      getattr(batched, f"{kind}_matid")[dst[known]] = wanted[known]
  return True


def copy_env_back(
  batched: mujoco.MjModel,
  single: mujoco.MjModel,
  copies: int,
  shared_geoms: Sequence[int] = (),
) -> bool:
  """The reverse of :func:`copy_compiled` for env 0 (at the origin): write
  env 0's drawn values in ``batched`` (``copies`` envs) into ``single``.

  Returns:
    False, changing nothing, when ``batched`` is not laid out env by env.
  """
  nb = single.nbody - 1
  geoms = _item_maps(single, batched, copies, "geom", shared_geoms)
  sites = _item_maps(single, batched, copies, "site", ())
  if geoms is None or sites is None or batched.nbody != 1 + copies * nb:
    return False
  for field in _BODY_FIELDS:
    getattr(single, field)[1:] = getattr(batched, field)[1 : 1 + nb]
  mat = mujoco.mjtObj.mjOBJ_MATERIAL
  shared = np.zeros(single.ngeom, bool)
  shared[list(shared_geoms)] = True
  for kind, ids, fields in (
    ("geom", geoms[0], _GEOM_FIELDS),
    ("site", sites[0], _SITE_FIELDS),
  ):
    keep = ids >= 0
    if kind == "geom":
      keep &= ~shared
    src, dst = np.flatnonzero(keep), ids[keep]
    for field in fields:
      getattr(single, field)[src] = getattr(batched, field)[dst]
    matids = getattr(single, f"{kind}_matid")
    for i, j in zip(src, getattr(batched, f"{kind}_matid")[dst]):
      name = _name(batched, mat, j)
      if name.startswith("e0/"):
        name = name[3:]
      found = mujoco.mj_name2id(single, mat, name) if name else -1
      if found >= 0 or j < 0:
        matids[i] = found
  return True
