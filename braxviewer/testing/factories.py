"""Small stand-ins for tests and benchmarks: a stream's info and a chunk of
frames with only the fields that matter to the caller given.

    info = stream_info(2, nq=8)            # 2 envs of qpos width 8
    chunk = frame_chunk(n=2, seq=3, steps=60)

A tiny model to draw them on is :data:`braxviewer.testing.synthetic.PUCK_XML`
(nq 8). numpy only.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np

from braxviewer.core.frames import FrameChunk
from braxviewer.core.protocol import StreamInfo


def stream_info(
  num_envs: int = 2,
  *,
  nq: int = 8,
  dt: float = 0.01,
  chunk_length: int = 10,
  reward_terms: Sequence[str] = (),
  **fields: Any,
) -> StreamInfo:
  """A qpos stream of ``num_envs`` envs (all the training envs, on one
  device, unless ``fields`` say otherwise: ``num_train_envs``,
  ``envs_per_device``, ``nmocap``, ``info_keys``, ...)."""
  fields.setdefault("num_train_envs", num_envs)
  fields.setdefault("envs_per_device", fields["num_train_envs"])
  fields.setdefault("kind", "qpos")
  fields.setdefault("num_links", None)
  return StreamInfo(
    num_envs=num_envs,
    nq=nq,
    dt=dt,
    chunk_length=chunk_length,
    reward_terms=tuple(reward_terms),
    **fields,
  )


def frame_chunk(
  t: int = 10,
  n: int = 2,
  nq: int = 8,
  dt: float = 0.01,
  seq: int = 0,
  source: str = "train",
  steps: int = 0,
) -> FrameChunk:
  """``t`` frames of ``n`` envs at rest (qpos 0), reward 1, one reward term
  ``r``."""
  return FrameChunk(
    seq=seq,
    source=source,  # type: ignore[arg-type]
    env_steps=steps,
    dt=dt,
    reward=np.ones((t, n)),
    done=np.zeros((t, n)),
    truncation=np.zeros((t, n)),
    metrics={"r": np.zeros((t, n))},
    wall_time=time.time(),
    qpos=np.zeros((t, n, nq)),
  )
