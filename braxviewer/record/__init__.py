"""Recording what is streamed, and reading it back (replay, export). No JAX.

    rec = Recorder("runs/pendulum", env=env)       # a TrainingViewer
    ppo.train(environment=env, ..., viewer=rec)    # or FanOut(web, rec)
    rec.close()

    with open_recording("runs/pendulum") as r:
      chunk = r.chunks("train")[-1]                 # a FrameChunk, bit-exact

The format is described in :mod:`braxviewer.record.format` and
docs/recording.md.
"""

from braxviewer.record.format import (
  FORMAT_VERSION,
  RecordingError,
  RecordingNotFound,
  UnsupportedVersion,
)
from braxviewer.record.reader import ChunkList, Recording, open_recording
from braxviewer.record.recorder import Recorder, RecorderStats, RecordingWarning

__all__ = [
  "FORMAT_VERSION",
  "ChunkList",
  "Recorder",
  "RecorderStats",
  "Recording",
  "RecordingError",
  "RecordingNotFound",
  "RecordingWarning",
  "UnsupportedVersion",
  "open_recording",
]
