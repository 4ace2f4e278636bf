"""Find the MuJoCo model to draw: from a brax env, a Playground env, XML or a model."""

from __future__ import annotations

import os
from typing import Any

import mujoco

from braxviewer.model_lookup import find_mj_model, where_models_are_looked_up


def resolve_model(source: Any) -> mujoco.MjModel:
  """The MuJoCo model behind ``source``.

  Args:
    source: a brax env (``env.sys.mj_model``), a MuJoCo Playground env
      (``env.mj_model``), either one wrapped, an ``mujoco.MjModel``, an MJCF
      XML string, or the path of an MJCF file.

  Raises:
    TypeError: when no MuJoCo model can be found in ``source``.
  """
  if isinstance(source, mujoco.MjModel):
    return source
  if isinstance(source, (str, os.PathLike)):
    text = os.fspath(source)
    if text.lstrip().startswith("<"):
      return mujoco.MjModel.from_xml_string(text)
    if os.path.isfile(text):
      return mujoco.MjModel.from_xml_path(text)
    raise TypeError(
        f"viewer.init() got a string that is neither MJCF XML nor an existing"
        f" file: {text[:60]!r}."
    )
  model = find_mj_model(source)
  if model is not None:
    return model
  raise TypeError(
      f"viewer.init() needs a brax env, a MuJoCo Playground env, an MjModel or"
      f" MJCF XML; {type(source).__name__} has none of "
      + where_models_are_looked_up() + "."
  )
