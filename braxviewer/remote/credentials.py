"""Who a run is to a viewer server: its name, its key, and its process.

A run's name defaults to the script's name and the time; its key
(:func:`resolve_run_key`) makes the run its own processes' only: given,
from ``$BRAXVIEWER_RUN_KEY``, or under ``jax.distributed`` one process 0
makes and the others read from JAX's coordinator. The server's token is
read elsewhere (:mod:`~braxviewer.remote.token_file`). No JAX (read only if
the trainer already imported it), no web.
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from typing import Optional, Tuple
import warnings

RUN_KEY_ENV = "BRAXVIEWER_RUN_KEY"
_JOB_KEY_WAIT_MS = 60_000  # how long process k waits for process 0's key


class NoRunKey(RuntimeWarning):
  """A process of a multi-host job got no run key from process 0."""


def default_run_name() -> str:
  script = os.path.basename(sys.argv[0] or "") or "python"
  script = os.path.splitext(script)[0] or "python"
  return f"{script}-{time.strftime('%H%M%S')}"


def resolve_run_key(run: str, given: Optional[str] = None) -> str:
  """The key that makes a run this run's own on the server: ``given``;
  else ``$BRAXVIEWER_RUN_KEY`` (a job script exports one for all its
  processes); else, under ``jax.distributed``, one that process 0 makes
  and the others read from JAX's coordinator (a bounded wait); else a new
  random key (this process alone)."""
  if given:
    return str(given)
  from_env = os.environ.get(RUN_KEY_ENV, "").strip()
  if from_env:
    return from_env
  return _job_key(run) or secrets.token_hex(16)


def _job_key(run: str) -> Optional[str]:
  """Under ``jax.distributed``: process 0's random key for ``run``, shared
  through JAX's coordinator key-value store; None elsewhere."""
  jax = sys.modules.get("jax")
  if jax is None:
    return None
  try:
    if jax.process_count() <= 1:
      return None
    # the coordinator's key-value store, loaded by jax.distributed
    distributed = sys.modules.get("jax._src.distributed")
    state = getattr(distributed, "global_state", None)
    client = getattr(state, "client", None)
    first = jax.process_index() == 0
  except Exception:
    return None
  if client is None:
    return None
  name = f"braxviewer/run_key/{run}"
  try:
    if first:
      key = secrets.token_hex(16)
      try:
        client.key_value_set(name, key)
      except Exception:  # set before (a second viewer of that name)
        key = str(client.blocking_key_value_get(name, 1000))
      return key
    return str(client.blocking_key_value_get(name, _JOB_KEY_WAIT_MS))
  except Exception as err:
    warnings.warn(
      f"braxviewer: process {jax.process_index()} got no run key for"
      f" {run!r} from process 0 ({type(err).__name__}); did every process"
      " call braxviewer.connect with the same run=? This process streams"
      " as a run of its own.",
      NoRunKey,
      stacklevel=3,
    )
    return None


def process_of_job() -> Tuple[int, int]:
  """(process index, process count) when the trainer's JAX knows them."""
  jax = sys.modules.get("jax")
  if jax is None:
    return 0, 1
  try:
    return int(jax.process_index()), int(jax.process_count())
  except Exception:
    return 0, 1
