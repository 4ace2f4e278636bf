"""JAX's persistent compilation cache for the demos and the command line.

Compiling PPO takes 40-170 s on a CPU; with the cache on, a second run of
the same program starts training in seconds. The demos and ``python -m
braxviewer`` turn it on (``~/.cache/braxviewer/jax``, or
``$XDG_CACHE_HOME/braxviewer/jax``); ``BRAXVIEWER_COMPILE_CACHE=0`` turns
it off, ``BRAXVIEWER_COMPILE_CACHE=/some/dir`` moves it. In your own script:

    from braxviewer import compile_cache
    compile_cache.enable()          # before the first compile
"""

from __future__ import annotations

import os
from typing import Optional

import jax

ENV_VAR = "BRAXVIEWER_COMPILE_CACHE"


def default_dir() -> str:
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
    os.path.expanduser("~"), ".cache"
  )
  return os.path.join(base, "braxviewer", "jax")


def enable(path: Optional[str] = None) -> Optional[str]:
  """Turn JAX's persistent compilation cache on; returns its directory, or
  None when ``BRAXVIEWER_COMPILE_CACHE=0`` turned it off (or the directory
  cannot be made: the run then compiles as usual)."""
  setting = os.environ.get(ENV_VAR, "").strip()
  if setting.lower() in ("0", "off", "false", "no"):
    return None
  path = path or setting or default_dir()
  try:
    os.makedirs(path, exist_ok=True)
  except OSError:
    return None
  jax.config.update("jax_compilation_cache_dir", path)
  # Cache every program the run compiles (the defaults skip quick ones, and
  # a run is many programs).
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
  return path
