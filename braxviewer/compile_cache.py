"""JAX's persistent compilation cache for the demos and the command line.

The demos and ``python -m braxviewer`` call :func:`enable`: where JAX runs
on a GPU or TPU, XLA's compile is most of a run's start, and a second run of
the same program loads it from ``~/.cache/braxviewer/jax`` (or
``$XDG_CACHE_HOME/braxviewer/jax``). On a CPU it stays off unless asked for:
there tracing is most of the start (a second run was 10-14% quicker, 34 -> 31
s for inverted_pendulum, 71 -> 61 s for ant, docs/benchmarks.md) and
jaxlib's CPU loader logs a page of machine-feature errors at each load.
``BRAXVIEWER_COMPILE_CACHE=0`` turns it off everywhere,
``BRAXVIEWER_COMPILE_CACHE=/some/dir`` turns it on everywhere, there. In
your own script:

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


def enable(
  path: Optional[str] = None, *, on_cpu: bool = False
) -> Optional[str]:
  """Turn JAX's persistent compilation cache on; returns its directory, or
  None where it stays off: ``BRAXVIEWER_COMPILE_CACHE=0``, a CPU backend
  (unless ``on_cpu``, a ``path`` or ``BRAXVIEWER_COMPILE_CACHE=/some/dir``
  asks for it), or a directory that cannot be made (the run then compiles as
  usual)."""
  setting = os.environ.get(ENV_VAR, "").strip()
  if setting.lower() in ("0", "off", "false", "no"):
    return None
  asked = bool(on_cpu or path or setting)
  if not asked and jax.default_backend() == "cpu":
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
