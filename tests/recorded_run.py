"""One tiny recorded training per test session, shared by the record,
replay and export tests (a PPO compile costs tens of seconds here).

The stream goes through a FanOut to a HeadlessViewer and a Recorder, so the
tests can compare what was recorded with what was streamed.
"""

from __future__ import annotations

import atexit
import dataclasses
import shutil
import tempfile
import warnings
from typing import Optional

_CACHE = {}


@dataclasses.dataclass
class RecordedRun:
  path: str
  headless: object  # HeadlessViewer that saw the same stream
  stats: object  # RecorderStats
  warnings: list


def recorded_run() -> RecordedRun:
  """Train TINY inverted_pendulum (generalized) once, recording 4 envs."""
  if "run" in _CACHE:
    return _CACHE["run"]
  from brax import envs  # pylint: disable=import-outside-toplevel
  from braxviewer import HeadlessViewer
  from braxviewer.brax.training.agents.ppo import train as ppo
  from braxviewer.multiplex import FanOut
  from braxviewer.record import Recorder
  from tiny_training import TINY

  root = tempfile.mkdtemp(prefix="bv-rec-")
  atexit.register(shutil.rmtree, root, True)
  path = f"{root}/run"
  env = envs.get_environment("inverted_pendulum", backend="generalized")
  headless = HeadlessViewer(num_envs=4, mode="live")
  recorder = Recorder(path, env=env, mode="live")
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    ppo.train(environment=env, viewer=FanOut(headless, recorder), **TINY)
    recorder.close()
  run = RecordedRun(path, headless, recorder.stats,
                    [str(w.message) for w in caught
                     if "braxviewer" in str(w.message)])
  _CACHE["run"] = run
  return run


def copy_of(run: RecordedRun, dest: str) -> str:
  shutil.copytree(run.path, dest)
  return dest
