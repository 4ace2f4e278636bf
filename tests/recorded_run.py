"""Recordings for the record, replay and export tests: one tiny recorded
training per test session (a PPO compile costs tens of seconds here), and
synthetic recordings made without training (make_recording).

The stream goes through a FanOut to a HeadlessViewer and a Recorder, so the
tests can compare what was recorded with what was streamed.
"""

from __future__ import annotations

import atexit
import dataclasses
import shutil
import tempfile
import time
import warnings

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


N = 4
CHUNKS = 40


def wait_until(predicate, timeout=15.0, step=0.05) -> bool:
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    if predicate():
      return True
    time.sleep(step)
  return predicate()


def make_recording(path: str, chunks: int = CHUNKS) -> str:
  """Record a synthetic stream, no training: 4 pucks, 10 frames per chunk,
  dt 0.05 s, at least ``chunks`` chunks."""
  import mujoco  # pylint: disable=import-outside-toplevel
  from braxviewer.record import Recorder  # pylint: disable=import-outside-toplevel
  from braxviewer.web.synthetic import PUCK_XML, SyntheticStream  # pylint: disable=import-outside-toplevel
  rec = Recorder(path, env=PUCK_XML, mode="sync", num_envs=N)
  model = mujoco.MjModel.from_xml_string(PUCK_XML)
  stream = SyntheticStream(rec, model, num_envs=N, chunk_length=10,
                           frame_skip=5, chunks_per_s=None,
                           progress_every=2).start()
  assert wait_until(lambda: stream.chunks_made >= chunks, timeout=60)
  stream.stop()
  rec.close()
  assert stream.error is None and rec.failed is None
  return path


