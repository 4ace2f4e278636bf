"""Where an env keeps its MuJoCo model: one lookup for the trainer and the viewers.

No JAX, no web: brax envs hold it at ``env.sys.mj_model``, MuJoCo Playground
envs at ``env.mj_model``, and wrappers forward both through ``env.unwrapped``.
"""

from __future__ import annotations

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
    except Exception:  # pylint: disable=broad-except
      continue
    if isinstance(model, mujoco.MjModel):
      return model
  return None


def where_models_are_looked_up() -> str:
  """The attribute paths tried, for error messages."""
  return ", ".join(name for name, _ in MODEL_GETTERS)
