"""One MJCF holding N copies of a MuJoCo model on a grid, built with MjSpec.

Each env is the source model attached under a frame at its grid offset with
the name prefix ``e{i}/``: bodies, joints, geoms (``fromto`` included),
default classes, materials, meshes, textures, cameras, tendons, equalities,
contact pairs and excludes, actuators and sensors are copied per env by
MuJoCo itself, not by string surgery. What belongs to the world once stays
once:

* world lights (moved to the grid centre) and the skybox; lights on bodies
  and lights aimed at a body (``mode="targetbody"``, aimed at env 0's) are
  kept in env 0 only, so N envs do not add N light sources;
* ground planes (z-up planes on the world body) become one floor under the
  whole grid, enlarged to cover it (per-env floors when the grid has several
  layers);
* options, compiler, visual, statistic (widened to the grid), size
  (memory and constraint limits multiplied by N), custom text and the global
  custom numerics; numerics as long as ``qpos`` or as the bodies are tiled
  per env;
* keyframes: one set, each with N times the ``qpos`` (free-joint positions
  moved to their env's offset, since MuJoCo ignores the frame for them).

Identical meshes and textures are merged (``MjSpec.dedup_assets``). What
stays once is split off in :mod:`braxviewer.scene.world_once`; the single
model comes from :mod:`braxviewer.scene.source` (an env or an ``MjModel``:
the copies are of the compiled model the env simulates). This module lays
the copies out and compiles them. numpy + mujoco only.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Mapping, Optional, Sequence
import warnings

import mujoco
import numpy as np

from braxviewer.scene import grid, world_once
from braxviewer.scene import match as model_match
from braxviewer.scene.source import (
  Assets,
  SourceModel,
  XmlSource,
  source_from_any,
)

_FREE = int(mujoco.mjtJoint.mjJNT_FREE)


@dataclasses.dataclass
class BatchedBuild:
  """The N-env spec, its compiled model and the grid it was laid out on."""

  spec: mujoco.MjSpec
  model: mujoco.MjModel
  offsets: np.ndarray  # (N, 3)
  grid_dims: grid.GridDims
  env_offset: np.ndarray  # (3,) spacing


def qpos_shifts(model: mujoco.MjModel, offsets: np.ndarray) -> np.ndarray:
  """``(N, nq)`` to add to each env's ``qpos`` in the batched model: the grid
  offset on free-joint positions (MuJoCo ignores the env's frame for those),
  zero elsewhere."""
  shifts = np.zeros((len(offsets), model.nq))
  for j in np.flatnonzero(model.jnt_type == _FREE):
    adr = model.jnt_qposadr[j]
    shifts[:, adr : adr + 3] = offsets
  return shifts


def _tile(values: np.ndarray, num_envs: int) -> list:
  return np.tile(np.asarray(values, dtype=float), num_envs).tolist()


def _add_keyframes(
  spec: mujoco.MjSpec, model: mujoco.MjModel, offsets: np.ndarray
) -> None:
  """One keyframe set, N times the qpos, from the compiled single model."""
  n = len(offsets)
  shifts = qpos_shifts(model, offsets)
  for k in range(model.nkey):
    qpos = (model.key_qpos[k][None, :] + shifts).ravel()
    mpos = (model.key_mpos[k].reshape(-1, 3)[None] + offsets[:, None]).ravel()
    key = spec.add_key(name=model.key(k).name, time=float(model.key_time[k]))
    key.qpos = qpos.tolist()
    key.qvel = _tile(model.key_qvel[k], n)
    key.act = _tile(model.key_act[k], n)
    key.ctrl = _tile(model.key_ctrl[k], n)
    key.mpos = mpos.tolist()
    key.mquat = _tile(model.key_mquat[k], n)
    if model.key_plastic.size:
      key.plastic = _tile(model.key_plastic[k], n)


def _tile_numerics(
  spec: mujoco.MjSpec, model: mujoco.MjModel, offsets: np.ndarray
) -> None:
  """Per-env numerics (qpos-long or body-long) become N copies."""
  n = len(offsets)
  shifts = qpos_shifts(model, offsets)
  for numeric in spec.numerics:
    data = np.asarray(numeric.data, dtype=float)
    if data.size > 1 and data.size == model.nq:
      numeric.data = (data[None, :] + shifts).ravel().tolist()
    elif data.size > 1 and data.size == model.nbody - 1:
      numeric.data = _tile(data, n)
    else:
      continue
    if numeric.size > 0:
      numeric.size = int(len(numeric.data))


def _absolute_asset_dirs(spec: mujoco.MjSpec, file_dir: Optional[str]) -> None:
  """Let the written XML find mesh/texture files from any directory."""
  if file_dir is None:
    return
  has_files = (
    any(m.file for m in spec.meshes)
    or any(t.file or any(t.cubefiles) for t in spec.textures)
    or any(h.file for h in spec.hfields)
    or any(s.file for s in spec.skins)
  )
  if not has_files:
    return
  for field in ("meshdir", "texturedir"):
    value = getattr(spec.compiler, field)
    if not os.path.isabs(value):
      setattr(spec.compiler, field, os.path.join(file_dir, value))


_FILE_ASSETS = ("meshes", "textures", "hfields", "skins")


def _asset_counts(spec: mujoco.MjSpec) -> dict:
  return {kind: len(getattr(spec, kind)) for kind in _FILE_ASSETS}


def _restore_files(
  spec: mujoco.MjSpec, template: mujoco.MjSpec, before: Mapping[str, int]
) -> None:
  """Undo the name prefix MuJoCo 4.0's attach also puts on asset file paths
  (``e1/mesh.obj``), so files resolve and identical assets merge."""
  for kind in _FILE_ASSETS:
    added = getattr(spec, kind)[before[kind] :]
    for new, old in zip(added, getattr(template, kind)):
      new.file = old.file
      if kind == "textures":
        new.cubefiles = list(old.cubefiles)


def build_batched(
  source: SourceModel,
  num_envs: int,
  grid_dims: Optional[Sequence[int]] = None,
  env_offset=None,
) -> BatchedBuild:
  """Lay ``num_envs`` copies of ``source`` out on a grid and compile them.

  Args:
    source: from :func:`braxviewer.scene.source.load_source` (or
      ``source_from_any``).
    num_envs: number of copies, >= 1.
    grid_dims: ``(nx, ny[, nz])`` covering ``num_envs``; None: near-square.
    env_offset: cell spacing ``(dx, dy, dz)`` in metres; None: derived from
      the model's size (:func:`braxviewer.scene.grid.default_env_offset`).
  """
  num_envs = grid.check_num_envs(num_envs)
  dims = grid.resolve_grid_dims(num_envs, grid_dims)
  spacing = (
    grid.default_env_offset(source.model)
    if env_offset is None
    else grid.check_env_offset(env_offset)
  )
  offsets = grid.grid_offsets(num_envs, dims, spacing)
  single = source.truth

  planes = world_once.shared_planes(source, dims)
  plane_names = [source.spec.worldbody.geoms[i].name for i in planes]
  plane_ids = [source.spec.worldbody.geoms[i].id for i in planes]
  spec, plane_geoms = world_once.parent_spec(source, planes)
  first = world_once.child_spec(source, planes, keep_body_lights=True)
  rest = world_once.child_spec(source, planes, keep_body_lights=False)
  for i, offset in enumerate(offsets):
    frame = spec.worldbody.add_frame(pos=offset)
    template = first if i == 0 else rest
    before = _asset_counts(spec)
    spec.attach(template.copy(), prefix=f"e{i}/", frame=frame)
    _restore_files(spec, template, before)
  world_once.rename_plane_refs(spec, [n for n in plane_names if n], num_envs)
  world_once.fit_to_grid(spec, plane_geoms, offsets)
  _add_keyframes(spec, single, offsets)
  _tile_numerics(spec, single, offsets)
  spec.dedup_assets()
  try:
    model = spec.compile()
  except ValueError as err:
    raise ValueError(
      f"The grid of {num_envs} copies of the model from {source.origin} does"
      f" not compile: {err}"
    ) from None
  if not grid.is_env_major(single, model, num_envs) or (
    source.compiled is not None
    and not model_match.copy_compiled(single, model, offsets, plane_ids)
  ):
    raise RuntimeError(
      "braxviewer: the batched model's bodies/joints are not laid out env by"
      f" env ({model.nbody} bodies, nq {model.nq} for {num_envs} envs of"
      f" {single.nbody} bodies, nq {single.nq}). Please report this model."
    )
  return BatchedBuild(spec, model, offsets, dims, spacing)


def concatenate_envs_xml(
  xml_string: Any,
  num_envs: int,
  grid_dims: Optional[Sequence[int]] = None,
  env_offset=None,
  assets: Optional[Assets] = None,
  *,
  model_dir: Optional[XmlSource] = None,
) -> str:
  """One MJCF holding ``num_envs`` copies of a model on a grid.

  Args:
    xml_string: the single-env MJCF text, the path of an MJCF file, an
      ``MjSpec``, or the env itself (a MuJoCo Playground or brax env, or its
      ``MjModel``): then the copies are of the compiled model it simulates,
      its in-memory ``model_assets`` included (see
      :func:`braxviewer.scene.source.source_from_any`).
    num_envs: number of copies, >= 1. Env ``i``'s names get the prefix
      ``e{i}/``; its bodies and qpos are the i-th contiguous block.
    grid_dims: ``(nx, ny[, nz])`` whose product covers ``num_envs``; None: a
      near-square grid in x, y.
    env_offset: spacing ``(dx, dy, dz)`` between neighbouring envs (m);
      None: derived from the model's size so that copies do not overlap.
    assets: file name -> contents for includes, meshes and textures.
    model_dir: directory holding the files the XML refers to.

  Returns:
    MJCF text. When the model came from a file or ``model_dir`` it refers to
    mesh/texture files by absolute directory and loads anywhere; otherwise
    load it with the same ``assets`` (an env's: ``env.model_assets``).

  Raises:
    ValueError: for bad arguments or a model MuJoCo cannot load.
  """
  num_envs = grid.check_num_envs(num_envs)
  grid.resolve_grid_dims(num_envs, grid_dims)  # fail before parsing
  if env_offset is not None:
    grid.check_env_offset(env_offset)
  source = source_from_any(xml_string, assets, model_dir)
  build = build_batched(source, num_envs, grid_dims, env_offset)
  _absolute_asset_dirs(build.spec, source.file_dir)
  if source.note:
    warnings.warn(
      "braxviewer: the XML of the N copies lacks some values of the compiled"
      f" model ({source.note}); BatchedScene(env, N).batched_model has"
      " them.",
      stacklevel=2,
    )
  return build.spec.to_xml()
