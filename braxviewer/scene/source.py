"""The single-env model that N copies are made of, and where it comes from.

:func:`load_source` parses and compiles MJCF text or a file (with in-memory
assets or a directory of them) into a :class:`SourceModel`. Given an env or
an ``MjModel`` (:func:`source_from_any`), the copies must be of the compiled
model the env simulates, not of an XML file: an XML of the same structure
(the env's ``xml_path`` with its in-memory ``model_assets``, or the XML
MuJoCo loaded last) takes the compiled values
(:mod:`braxviewer.scene.match`), so models built in code (``MjSpec``) or
edited after compiling come out as the env has them. The grid of copies is
built from it by :mod:`braxviewer.scene.grid_xml`. numpy + mujoco only.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import tempfile
from typing import Any, Dict, Mapping, Optional, Union
import warnings

import mujoco

from braxviewer.scene import match as model_match
from braxviewer.scene.lookup import find_mj_model

XmlSource = Union[str, os.PathLike]
Assets = Mapping[str, Union[bytes, str]]


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
