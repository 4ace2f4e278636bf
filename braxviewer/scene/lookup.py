"""Where an env keeps its MuJoCo model: one lookup for the trainer, the
viewers and the recorder.

No JAX, no web: brax envs hold it at ``env.sys.mj_model``, MuJoCo Playground
envs at ``env.mj_model``, and wrappers forward both through ``env.unwrapped``.
:func:`resolve_model` also takes a model, MJCF text or an MJCF file.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Optional, Tuple

import mujoco

MODEL_GETTERS: Tuple[Tuple[str, Callable[[Any], Any]], ...] = (
  ("env.sys.mj_model", lambda e: e.sys.mj_model),
  ("env.mj_model", lambda e: e.mj_model),
  ("env.unwrapped.sys.mj_model", lambda e: e.unwrapped.sys.mj_model),
  ("env.unwrapped.mj_model", lambda e: e.unwrapped.mj_model),
)


def find_mj_model(env: Any) -> Optional[mujoco.MjModel]:
  """The ``MjModel`` behind a brax or MuJoCo Playground env, or None."""
  for _, getter in MODEL_GETTERS:
    try:
      model = getter(env)
    except Exception:
      continue
    if isinstance(model, mujoco.MjModel):
      return model
  return None


def physics_state(state: Any, hint: str = "") -> Any:
  """The physics part of an env state: brax's ``pipeline_state`` or MuJoCo
  Playground's ``data``.

  Raises:
    ValueError: a state with neither (``hint`` says what to do instead).
  """
  physics = getattr(state, "pipeline_state", None)
  if physics is None:
    physics = getattr(state, "data", None)
  if physics is None:
    raise ValueError(
      f"The env state ({type(state).__name__}) has neither `pipeline_state`"
      " (brax) nor `data` (MuJoCo Playground); braxviewer cannot find the"
      " pose to stream." + (f" {hint}" if hint else "")
    )
  return physics


def where_models_are_looked_up() -> str:
  """The attribute paths tried, for error messages."""
  return ", ".join(name for name, _ in MODEL_GETTERS)


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
    + where_models_are_looked_up()
    + "."
  )
