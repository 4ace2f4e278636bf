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

Identical meshes and textures are merged (``MjSpec.dedup_assets``).

Given an env or an ``MjModel`` (:func:`source_from_any`), the copies are of
the compiled model the env simulates, not of an XML file: an XML of the same
structure (the env's ``xml_path`` with its in-memory ``model_assets``, or
the XML MuJoCo loaded last) takes the compiled values
(:mod:`braxviewer.scene.match`), so models built in code (``MjSpec``) or
edited after compiling come out as the env has them. numpy + mujoco only.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import tempfile
from typing import Any, Dict, Mapping, Optional, Sequence, Union
import warnings

import mujoco
import numpy as np

from braxviewer.scene import grid
from braxviewer.scene import match as model_match
from braxviewer.scene.lookup import find_mj_model

XmlSource = Union[str, os.PathLike]
Assets = Mapping[str, Union[bytes, str]]

_PLANE = mujoco.mjtGeom.mjGEOM_PLANE
_FREE = int(mujoco.mjtJoint.mjJNT_FREE)
_SKYBOX = mujoco.mjtTexture.mjTEXTURE_SKYBOX


@dataclasses.dataclass
class SourceModel:
  """A parsed single-env model and where it came from.

  Attributes:
    spec: the parsed spec (compiled once; not modified afterwards).
    model: the compiled single-env model.
    origin: where it came from, for messages.
    file_dir: directory that relative asset files resolve against, when the
      model came from a file or ``model_dir`` (None for a bare XML string).
    compiled: the model an env simulates, when the source was an env or an
      ``MjModel``: the copies get its values (None: ``model`` is the truth).
    note: what of ``compiled`` the spec could not take (the N-env model
      still gets it), for messages.
  """

  spec: mujoco.MjSpec
  model: mujoco.MjModel
  origin: str
  file_dir: Optional[str] = None
  compiled: Optional[mujoco.MjModel] = None
  note: str = ""

  @property
  def truth(self) -> mujoco.MjModel:
    """The single-env model the copies must match."""
    return self.model if self.compiled is None else self.compiled


@dataclasses.dataclass
class BatchedBuild:
  """The N-env spec, its compiled model and the grid it was laid out on."""

  spec: mujoco.MjSpec
  model: mujoco.MjModel
  offsets: np.ndarray  # (N, 3)
  grid_dims: grid.GridDims
  env_offset: np.ndarray  # (3,) spacing


def _looks_like_xml(text: str) -> bool:
  return text.lstrip().startswith("<")


def _describe(xml: str) -> str:
  first = xml.strip().splitlines()[0] if xml.strip() else ""
  if len(first) > 60:
    first = first[:57] + "..."
  return f"the XML string starting {first!r}"


def _read_dir(model_dir: str) -> dict:
  """Every file under ``model_dir``, keyed by its relative path."""
  files = {}
  root = pathlib.Path(model_dir)
  for path in sorted(root.rglob("*")):
    if path.is_file() and not any(p.startswith(".") for p in path.parts):
      files[path.relative_to(root).as_posix()] = path.read_bytes()
  return files


def load_source(
  xml: XmlSource,
  assets: Optional[Assets] = None,
  model_dir: Optional[XmlSource] = None,
) -> SourceModel:
  """Parse and compile a single-env model.

  Args:
    xml: MJCF text, or the path of an MJCF file (its includes, meshes and
      textures then resolve next to it).
    assets: file name -> contents for includes, meshes and textures, as for
      ``mujoco.MjModel.from_xml_string``.
    model_dir: directory whose files the XML refers to (read into the
      assets; entries in ``assets`` win).

  Raises:
    ValueError: MuJoCo's message and where the model came from, when it does
      not parse or compile.
  """
  files: dict = {}
  file_dir = None
  if model_dir is not None:
    file_dir = os.path.abspath(os.fspath(model_dir))
    if not os.path.isdir(file_dir):
      raise ValueError(
        f"model_dir {file_dir!r} is not a directory: give the directory that"
        " holds the files the XML refers to."
      )
    files.update(_read_dir(file_dir))
  for name, value in (assets or {}).items():
    files[name] = value.encode() if isinstance(value, str) else bytes(value)

  if isinstance(xml, os.PathLike) or (
    isinstance(xml, str) and not _looks_like_xml(xml)
  ):
    path = os.path.abspath(os.fspath(xml))
    if not os.path.isfile(path):
      raise ValueError(
        f"Expected MJCF XML text or the path of an MJCF file, got {xml!r}:"
        " no such file, and it is not XML (it does not start with '<')."
      )
    origin = f"file {path}"
    file_dir = file_dir or os.path.dirname(path)

    def parse() -> mujoco.MjSpec:
      return mujoco.MjSpec.from_file(
        path, include=files or None, assets=files or None
      )
  elif isinstance(xml, str):
    origin = _describe(xml)

    def parse() -> mujoco.MjSpec:
      return mujoco.MjSpec.from_string(
        xml, include=files or None, assets=files or None
      )
  else:
    raise ValueError(
      f"Expected MJCF XML text or a file path, got {type(xml).__name__}."
    )
  try:
    spec = parse()
    model = spec.compile()
  except ValueError as err:
    hint = ""
    if "opening file" in str(err) or "not found" in str(err):
      hint = (
        " Pass the files it refers to as assets={name: bytes}, or"
        " model_dir= the directory holding them, or the XML's file path."
      )
    raise ValueError(
      f"MuJoCo could not load the model from {origin}: {err}".rstrip() + hint
    ) from None
  return SourceModel(spec, model, origin, file_dir)


# -- what stays once --------------------------------------------------------


_AIMED = (
  mujoco.mjtCamLight.mjCAMLIGHT_TARGETBODY,
  mujoco.mjtCamLight.mjCAMLIGHT_TARGETBODYCOM,
)


def _is_world_light(light) -> bool:
  """A light the grid shares: on the world body and aimed at no body (a
  spotlight on a robot follows one env's robot: env 0's)."""
  aimed = light.mode in _AIMED and bool(light.targetbody)
  return light.parent.name == "world" and not aimed


def _shared_planes(source: SourceModel, grid_dims) -> dict:
  """z-up planes on the world body, shared by all envs: their index in
  ``spec.worldbody.geoms`` -> their compiled rotation matrix."""
  if grid_dims[2] > 1:
    return {}
  shared = {}
  for index, geom in enumerate(source.spec.worldbody.geoms):
    if geom.type != _PLANE or geom.frame is not None or geom.id < 0:
      continue
    rot = np.zeros(9)
    mujoco.mju_quat2Mat(rot, source.model.geom_quat[geom.id])
    if abs(rot[8] - 1.0) < 1e-9:  # plane normal is world +z
      shared[index] = rot.reshape(3, 3)
  return shared


def _widen_planes(planes: Sequence, offsets: np.ndarray) -> None:
  """Move shared planes ``[(geom, rotation)]`` to the grid centre and grow
  them to cover it."""
  lo, hi = offsets.min(0), offsets.max(0)
  centre, half_span = (lo + hi) / 2, (hi - lo) / 2
  for geom, rot in planes:
    geom.pos = np.asarray(geom.pos) + [centre[0], centre[1], 0.0]
    size = np.array(geom.size, dtype=float)
    local = np.abs(rot.T) @ half_span
    for axis in range(2):
      if size[axis] > 0:  # 0 means infinite when drawn
        size[axis] += local[axis]
    geom.size = size


def _rename_plane_refs(
  spec: mujoco.MjSpec, names: Sequence[str], num_envs: int
) -> None:
  """Point pairs and sensors at the shared plane instead of ``e{i}/name``."""
  back = {f"e{i}/{n}": n for n in names for i in range(num_envs)}
  if not back:
    return
  for pair in spec.pairs:
    pair.geomname1 = back.get(pair.geomname1, pair.geomname1)
    pair.geomname2 = back.get(pair.geomname2, pair.geomname2)
  for sensor in spec.sensors:
    sensor.objname = back.get(sensor.objname, sensor.objname)
    sensor.refname = back.get(sensor.refname, sensor.refname)


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


def _widen_statistic(spec: mujoco.MjSpec, offsets: np.ndarray) -> None:
  """Explicit statistic centre/extent cover the whole grid."""
  lo, hi = offsets.min(0), offsets.max(0)
  if not np.isnan(spec.stat.center[0]):
    spec.stat.center = np.asarray(spec.stat.center) + (lo + hi) / 2
  if not np.isnan(spec.stat.extent):
    spec.stat.extent = float(spec.stat.extent + np.linalg.norm(hi - lo) / 2)


def _scale_sizes(spec: mujoco.MjSpec, num_envs: int) -> None:
  """Explicit memory / constraint limits grow with the number of envs."""
  for field in ("memory", "njmax", "nconmax"):
    value = getattr(spec, field)
    if value > 0:
      setattr(spec, field, int(value) * num_envs)


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


# -- the builder --------------------------------------------------------------

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


def _parent_spec(source: SourceModel, planes: Mapping[int, np.ndarray]):
  """The source without its per-env content (globals, world lights, shared
  planes), and its shared planes as ``[(geom, rotation)]``."""
  spec = source.spec.copy()
  world = spec.worldbody
  geoms = list(world.geoms)
  kept = [(geoms[i], rot) for i, rot in planes.items()]
  for index, geom in enumerate(geoms):
    if index not in planes:
      spec.delete(geom)
  for frame in list(world.frames):
    spec.delete(frame)
  for body in list(world.bodies):
    spec.delete(body)
  for item in list(world.sites) + list(world.cameras):
    spec.delete(item)
  for light in list(spec.lights):
    if not _is_world_light(light):
      spec.delete(light)
  for group in (
    spec.actuators,
    spec.sensors,
    spec.tendons,
    spec.equalities,
    spec.excludes,
    spec.pairs,
    spec.keys,
    spec.tuples,
    spec.flexes,
    spec.skins,
  ):
    for item in list(group):
      spec.delete(item)
  return spec, kept


def _child_spec(
  source: SourceModel, planes: Mapping[int, np.ndarray], keep_body_lights: bool
) -> mujoco.MjSpec:
  """What every env gets: the source without world-once content."""
  spec = source.spec.copy()
  drop = [spec.worldbody.geoms[i] for i in planes]
  for geom in drop:
    spec.delete(geom)
  for light in list(spec.lights):
    if _is_world_light(light) or not keep_body_lights:
      spec.delete(light)
  for group in (spec.keys, spec.numerics, spec.texts):
    for item in list(group):
      spec.delete(item)
  for texture in list(spec.textures):
    if texture.type == _SKYBOX:
      spec.delete(texture)
  return spec


def build_batched(
  source: SourceModel,
  num_envs: int,
  grid_dims: Optional[Sequence[int]] = None,
  env_offset=None,
) -> BatchedBuild:
  """Lay ``num_envs`` copies of ``source`` out on a grid and compile them.

  Args:
    source: from :func:`load_source`.
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

  planes = _shared_planes(source, dims)
  plane_names = [source.spec.worldbody.geoms[i].name for i in planes]
  plane_ids = [source.spec.worldbody.geoms[i].id for i in planes]
  spec, plane_geoms = _parent_spec(source, planes)
  first = _child_spec(source, planes, keep_body_lights=True)
  rest = _child_spec(source, planes, keep_body_lights=False)
  for i, offset in enumerate(offsets):
    frame = spec.worldbody.add_frame(pos=offset)
    template = first if i == 0 else rest
    before = _asset_counts(spec)
    spec.attach(template.copy(), prefix=f"e{i}/", frame=frame)
    _restore_files(spec, template, before)
  _rename_plane_refs(spec, [n for n in plane_names if n], num_envs)
  _widen_planes(plane_geoms, offsets)
  centre = (offsets.min(0) + offsets.max(0)) / 2
  for light in spec.lights:
    if _is_world_light(light):
      light.pos = np.asarray(light.pos) + [centre[0], centre[1], 0.0]
  _add_keyframes(spec, single, offsets)
  _tile_numerics(spec, single, offsets)
  _widen_statistic(spec, offsets)
  _scale_sizes(spec, num_envs)
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
      its in-memory ``model_assets`` included (see :func:`source_from_any`).
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


def env_assets(env: Any) -> Dict[str, bytes]:
  """An env's in-memory files (MuJoCo Playground: ``env.model_assets``)."""
  for owner in (env, getattr(env, "unwrapped", None)):
    for name in ("model_assets", "_model_assets"):
      try:
        value = getattr(owner, name, None)
      except Exception:  # Playground raises where an env has none
        value = None
      if isinstance(value, Mapping):
        return {
          str(k): v.encode() if isinstance(v, str) else bytes(v)
          for k, v in value.items()
        }
  return {}


def _env_xml_path(env: Any) -> Optional[str]:
  for owner in (env, getattr(env, "unwrapped", None)):
    try:
      path = getattr(owner, "xml_path", None)
    except Exception:
      path = None
    if isinstance(path, (str, os.PathLike)) and os.path.isfile(path):
      return os.fspath(path)
  return None


def _last_xml(compiled: mujoco.MjModel, files: Assets) -> SourceModel:
  """The XML MuJoCo loaded last, if it is ``compiled``'s (brax and most
  Playground envs load their XML last)."""
  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "model.xml")
    try:
      mujoco.mj_saveLastXML(path, compiled)
    except Exception as err:
      raise ValueError(" ".join(str(err).split())) from None
    with warnings.catch_warnings():  # MuJoCo writes what it deprecates
      warnings.filterwarnings("ignore", message=".*meaninertia")
      source = load_source(path, files)
  source.spec.stat.meaninertia = float("nan")  # computed, not given
  source.file_dir = None
  source.origin = "the XML MuJoCo loaded last"
  return source


def source_from_compiled(
  compiled: mujoco.MjModel,
  env: Any = None,
  assets: Optional[Assets] = None,
  model_dir: Optional[XmlSource] = None,
) -> SourceModel:
  """:class:`SourceModel` whose copies are ``compiled`` (what an env
  simulates): the first XML of the same structure takes its values.

  Tried in order: ``env.xml_path`` (with ``env.model_assets`` and
  ``assets``), then the XML MuJoCo loaded last.

  Raises:
    ValueError: when no XML of that structure is at hand, with why each
      candidate was not.
  """
  files: Dict[str, Union[bytes, str]] = dict(env_assets(env))
  files.update(assets or {})
  path = _env_xml_path(env) if env is not None else None
  tried = []
  candidates = []
  if path is not None:
    candidates.append(
      (f"env.xml_path {path}", lambda: load_source(path, files, model_dir))
    )
  candidates.append(
    ("the XML MuJoCo loaded last", lambda: _last_xml(compiled, files))
  )
  for label, load in candidates:
    try:
      source = load()
    except ValueError as err:
      tried.append(f"{label}: {' '.join(str(err).split())[:200]}")
      continue
    mismatch = model_match.structure_mismatch(source.model, compiled)
    if mismatch is not None:
      tried.append(f"{label}: another model ({mismatch})")
      continue
    source.model, source.note = model_match.adopt_compiled(
      source.spec, source.model, compiled
    )
    source.compiled = compiled
    return source
  raise ValueError(
    "The N-env model needs an XML of the model's structure, and none"
    " matches (" + "; ".join(tried) + ")."
  )


def source_from_any(
  model: Any,
  assets: Optional[Assets] = None,
  model_dir: Optional[XmlSource] = None,
) -> SourceModel:
  """:class:`SourceModel` from XML text, a path, an ``MjSpec``, an
  ``MjModel`` or an env (brax: ``env.sys.mj_model``; MuJoCo Playground:
  ``env.mj_model``, ``env.xml_path``, ``env.model_assets``). For the last
  two the copies are of the compiled model (:func:`source_from_compiled`).

  Raises:
    ValueError: a model MuJoCo cannot load, an env without a model, or a
      compiled model no XML at hand has the structure of.
  """
  if isinstance(model, mujoco.MjModel):
    return source_from_compiled(model, None, assets, model_dir)
  if not isinstance(model, (mujoco.MjSpec, str, os.PathLike)):
    compiled = find_mj_model(model)
    if compiled is None:
      raise ValueError(
        f"Expected MJCF XML text, a file path, an MjSpec, an MjModel or an"
        f" env holding a MuJoCo model, got {type(model).__name__}."
      )
    return source_from_compiled(compiled, model, assets, model_dir)
  if isinstance(model, mujoco.MjSpec):
    spec = model.copy()
    try:
      compiled = spec.compile()
    except ValueError as err:
      raise ValueError(
        f"MuJoCo could not compile the given MjSpec: {err}"
      ) from None
    return SourceModel(spec, compiled, "the given MjSpec")
  return load_source(model, assets, model_dir)
