"""JAX's persistent compilation cache for the demos and the command line.

The demos and ``python -m braxviewer`` call :func:`enable`. Where JAX runs on
a GPU or TPU, XLA's compile is most of a run's start, and a second run of the
same program loads it from ``~/.cache/braxviewer/jax`` (or
``$XDG_CACHE_HOME/braxviewer/jax``). On a CPU backend it stays off: with
jaxlib 0.9 the CPU loader rejects its own entries and logs a page of
"machine feature ... not supported" errors at each load (jax-ml/jax#38445),
a second run was only 10-14% quicker (docs/benchmarks.md), and one load hung
for good in our CI (``DeserializeExecutable`` waiting forever).
``BRAXVIEWER_COMPILE_CACHE=0`` turns it off everywhere,
``BRAXVIEWER_COMPILE_CACHE=/some/dir`` moves it. In your own script:

    from braxviewer.app import compile_cache
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
  """Turn JAX's persistent compilation cache on where JAX runs on a GPU or
  TPU; returns its directory (``path``, else ``BRAXVIEWER_COMPILE_CACHE``,
  else :func:`default_dir`), or None where it stays off: a CPU backend,
  ``BRAXVIEWER_COMPILE_CACHE=0``, or a directory that cannot be made (the
  run then compiles as usual)."""
  setting = os.environ.get(ENV_VAR, "").strip()
  if setting.lower() in ("0", "off", "false", "no"):
    return None
  if jax.default_backend() == "cpu":
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
