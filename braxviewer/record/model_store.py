"""Keep the model a recording needs: everything to draw it with no access to
the original code or files.

Two copies are kept, because each covers what the other cannot:

* ``model.mjb``: MuJoCo's compiled binary, exact and self-contained (meshes,
  textures, heightfields inside), but readable only by the MuJoCo version
  that wrote it;
* ``model.xml`` + ``assets/``: MJCF (MuJoCo's own serializer, includes
  merged) with the files it refers to, flattened to plain names: portable
  across MuJoCo versions. It is an XML of the model's structure (the env's
  ``xml_path`` with its in-memory ``model_assets``, or the XML MuJoCo
  loaded last) that took the compiled model's values
  (:func:`braxviewer.scene.source.source_from_compiled`), so an env that edits
  its model in code is kept as it simulates. Kept when it reloads to the
  same model (structure, meshes and textures, drawn sizes, colours and
  poses); otherwise only the MJB is kept and the header's ``note`` says
  why.

Replay and export draw the MJB; the XML is read only where this MuJoCo
cannot read the MJB (another version).

No JAX.
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
import re
from typing import Any, Dict, Mapping, Optional

import mujoco
import numpy as np

from braxviewer.record.format import RecordingError
from braxviewer.scene import match as model_match
from braxviewer.scene import source as model_source
from braxviewer.scene.lookup import resolve_model

MJB_FILE = "model.mjb"
XML_FILE = "model.xml"
ASSET_DIR = "assets"


@dataclasses.dataclass
class ModelFiles:
  """What is written under ``model/``."""

  mjb: bytes
  xml: Optional[str] = None
  assets: Dict[str, bytes] = dataclasses.field(default_factory=dict)
  note: str = ""


_COUNTS = ("nmesh", "ntex", "nhfield", "nmat", "nlight", "ncam")
_VALUES = (
  "body_pos",
  "body_quat",
  "geom_size",
  "geom_rgba",
  "geom_pos",
  "geom_quat",
  "site_size",
  "site_rgba",
  "mat_rgba",
)


def _difference(a: mujoco.MjModel, b: mujoco.MjModel) -> Optional[str]:
  """None when ``a`` draws as ``b``; else the first difference found."""
  mismatch = model_match.structure_mismatch(a, b)
  if mismatch is not None:
    return mismatch
  for name in _COUNTS:
    if getattr(a, name) != getattr(b, name):
      return f"{name} {getattr(a, name)} != {getattr(b, name)}"
  for name in _VALUES:
    if not np.allclose(getattr(a, name), getattr(b, name), atol=1e-6):
      return f"{name} differs"
  if not np.array_equal(a.geom_matid, b.geom_matid):
    return "geom_matid differs"
  return None


def _mjb(model: mujoco.MjModel) -> bytes:
  buf = np.zeros(mujoco.mj_sizeModel(model), np.uint8)
  mujoco.mj_saveModel(model, None, buf)
  return buf.tobytes()


def _read(path: str) -> Optional[bytes]:
  try:
    with open(path, "rb") as f:
      return f.read()
  except OSError:
    return None


def _flatten(
  spec: mujoco.MjSpec, files: Mapping[str, bytes], base_dir: Optional[str]
) -> Dict[str, bytes]:
  """Point every file reference of ``spec`` at a plain name and return the
  files under those names. Raises KeyError for a file not found."""
  out: Dict[str, bytes] = {}
  dirs = {
    "mesh": spec.meshdir or spec.compiler.meshdir or "",
    "tex": spec.texturedir or spec.compiler.texturedir or "",
  }

  def fetch(name: str, kind: str) -> str:
    candidates = [
      posixpath.join(dirs[kind], name),
      name,
      posixpath.basename(name),
    ]
    data = None
    for c in candidates:
      if c in files:
        data = files[c]
        break
      if base_dir is not None:
        data = _read(os.path.join(base_dir, c))
        if data is not None:
          break
      if os.path.isabs(c):
        data = _read(c)
        if data is not None:
          break
    if data is None:
      raise KeyError(name)
    flat = check_asset_name(posixpath.basename(name))
    stem, ext = posixpath.splitext(flat)
    k = 1
    while flat in out and out[flat] != data:
      flat = f"{stem}_{k}{ext}"
      k += 1
    out[flat] = bytes(data)
    return flat

  for items, kind in (
    (spec.meshes, "mesh"),
    (spec.hfields, "mesh"),
    (spec.skins, "mesh"),
    (spec.textures, "tex"),
  ):
    for item in items:
      if item.file:
        item.file = fetch(item.file, kind)
  for tex in spec.textures:
    cubefiles = list(getattr(tex, "cubefiles", []) or [])
    if any(cubefiles):
      tex.cubefiles = [fetch(c, "tex") if c else c for c in cubefiles]
  spec.meshdir = ""
  spec.texturedir = ""
  spec.compiler.meshdir = ""
  spec.compiler.texturedir = ""
  return out


def _xml_of(
  model: mujoco.MjModel, source: Any, assets: Optional[Mapping[str, Any]]
) -> ModelFiles:
  files: Dict[str, bytes] = {}
  for name, value in (assets or {}).items():
    files[name] = value.encode() if isinstance(value, str) else bytes(value)
  if isinstance(source, (str, os.PathLike)):
    parsed = model_source.load_source(source, files)
  else:  # an env or an MjModel: its compiled model, whatever XML it had
    env = None if isinstance(source, mujoco.MjModel) else source
    parsed = model_source.source_from_compiled(model, env, files)
    for name, value in model_source.env_assets(env).items():
      files.setdefault(name, value)
  spec = parsed.spec
  flat = _flatten(spec, files, parsed.file_dir)
  spec.assets = dict(flat)  # to_xml compiles: resolve the new names
  xml = spec.to_xml()
  check = mujoco.MjModel.from_xml_string(xml, assets=flat or None)
  difference = _difference(check, model)
  if difference is not None:
    raise ValueError(
      f"the recovered XML compiles to a different model ({difference})"
    )
  return ModelFiles(mjb=_mjb(model), xml=xml, assets=flat)


def capture(
  source: Any, assets: Optional[Mapping[str, Any]] = None
) -> ModelFiles:
  """The files to keep for ``source``: a brax env, a MuJoCo Playground env,
  an ``MjModel``, MJCF text or an MJCF file path (or files captured
  before, e.g. sent by a training run to a viewer server).

  Raises:
    TypeError: when ``source`` holds no MuJoCo model.
  """
  if isinstance(source, ModelFiles):
    return source
  model = resolve_model(source)
  try:
    return _xml_of(model, source, assets)
  except Exception as err:
    reason = " ".join(str(err).split()) or type(err).__name__
    return ModelFiles(
      mjb=_mjb(model),
      note=(
        "no portable XML (" + reason[:200] + "); model.mjb needs"
        f" MuJoCo {mujoco.__version__}"
      ),
    )


def model_of(files: ModelFiles) -> mujoco.MjModel:
  """The compiled model in ``files`` (its MJB bytes).

  Raises:
    ValueError: the bytes are no model this MuJoCo reads.
  """
  try:
    return mujoco.MjModel.from_binary_path(MJB_FILE, {MJB_FILE: files.mjb})
  except Exception as err:
    raise ValueError(
      f"not a MuJoCo {mujoco.__version__} model ({' '.join(str(err).split())})"
    ) from None


MAX_ASSET_NAME = 255
_DRIVE = re.compile(r"^[A-Za-z]:")
_RESERVED = {"", ".", ".."}


def check_asset_name(name: object) -> str:
  """``name`` if it is a plain file name an asset may have in a recording
  (what :func:`capture` makes: no folders, no ``..``, no absolute path or
  drive letter, no control characters, at most 255 bytes); the name is
  data that becomes a path, so nothing else is written.

  Raises:
    ValueError: naming what is wrong.
  """
  if not isinstance(name, str):
    raise ValueError(f"asset name {name!r} is not text.")
  shown = repr(name[:60]) + ("..." if len(name) > 60 else "")
  why = None
  if name in _RESERVED or name.strip(" .") == "":
    why = "is empty or a dot name"
  elif "/" in name or "\\" in name:
    why = "has a folder separator (assets are plain file names)"
  elif _DRIVE.match(name):
    why = "starts with a drive letter"
  elif any(ord(c) < 32 or ord(c) == 127 for c in name):
    why = "has control characters"
  elif len(name.encode("utf-8", "surrogatepass")) > MAX_ASSET_NAME:
    why = f"is longer than {MAX_ASSET_NAME} bytes"
  if why is not None:
    raise ValueError(f"asset name {shown} {why}; it was not written.")
  return name


def _asset_path(directory: str, name: str) -> str:
  """Where asset ``name`` goes: inside ``directory/assets``, checked."""
  folder = os.path.realpath(os.path.join(directory, ASSET_DIR))
  path = os.path.join(folder, check_asset_name(name))
  if os.path.dirname(os.path.realpath(path)) != folder:
    raise ValueError(f"asset {name!r} would be written outside {folder}.")
  return path


def _write_new(path: str, data: bytes) -> None:
  """Write ``path`` without following a link planted there."""
  flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
  fd = os.open(path, flags, 0o644)
  with os.fdopen(fd, "wb") as f:
    f.write(data)


def write(directory: str, files: ModelFiles) -> Dict[str, Any]:
  """Write ``files`` under ``directory``; returns the header's model entry.

  Raises:
    ValueError: an asset name that is not a plain file name (nothing of
      the model is written then).
  """
  for name in files.assets:
    check_asset_name(name)
  os.makedirs(os.path.join(directory, ASSET_DIR), exist_ok=True)
  with open(os.path.join(directory, MJB_FILE), "wb") as f:
    f.write(files.mjb)
  entry: Dict[str, Any] = {
    "mjb": MJB_FILE,
    "mujoco": mujoco.__version__,
    "xml": None,
    "assets": [],
  }
  if files.xml is not None:
    with open(os.path.join(directory, XML_FILE), "w", encoding="utf-8") as f:
      f.write(files.xml)
    entry["xml"] = XML_FILE
    for name, data in files.assets.items():
      _write_new(_asset_path(directory, name), data)
      entry["assets"].append(name)
  if files.note:
    entry["note"] = files.note
  return entry


def load(directory: str, entry: Mapping[str, Any]) -> mujoco.MjModel:
  """The recorded model: the MJB when this MuJoCo reads it, else the XML.

  Raises:
    RecordingError: when neither copy loads.
  """
  errors = []
  mjb = entry.get("mjb")
  if mjb:
    try:
      return mujoco.MjModel.from_binary_path(os.path.join(directory, mjb))
    except Exception as err:
      errors.append(f"{mjb}: {' '.join(str(err).split())}")
  xml = entry.get("xml")
  if xml:
    try:
      assets = {}
      for name in entry.get("assets", ()):
        with open(_asset_path(directory, name), "rb") as f:
          assets[name] = f.read()
      with open(os.path.join(directory, xml), encoding="utf-8") as f:
        text = f.read()
      return mujoco.MjModel.from_xml_string(text, assets=assets or None)
    except Exception as err:
      errors.append(f"{xml}: {' '.join(str(err).split())}")
  raise RecordingError(
    "the recording's model could not be loaded ("
    + (
      "; ".join(errors)
      or "no model was recorded: call recorder.init(env)"
      " before training, or pass --model"
    )
    + ")."
  )
