"""Timelines of chunks: the last chunks a live viewer received."""

from __future__ import annotations

import pytest

from braxviewer.core import timeline
from braxviewer.core.timeline import RecentChunks


def test_recent_chunks_keep_the_newest_with_stable_positions(make_chunk):
  recent = RecentChunks(max_chunks=4)
  positions = [
    recent.append(make_chunk(seq=i, steps=100 * i)) for i in range(10)
  ]
  assert positions == list(range(10))
  kept = recent.chunks("train")
  assert (kept.start, len(kept), kept.end) == (6, 4, 10)
  assert [c.seq for c in kept] == [6, 7, 8, 9]
  assert list(kept.env_steps) == [600, 700, 800, 900]
  assert kept.nearest(740) == 1 and kept[-1].seq == 9
  recent.append(make_chunk(seq=10, steps=1000))
  assert [c.seq for c in kept] == [6, 7, 8, 9]  # a snapshot does not move
  assert recent.chunks("train").start == 7
  assert len(recent.chunks("eval")) == 0
  with pytest.raises(IndexError, match="4 train chunks"):
    kept[4]
  # the byte bound drops the oldest, but keeps the newest of each source
  size = timeline.chunk_nbytes(make_chunk())
  small = RecentChunks(max_chunks=100, max_bytes=3 * size)
  for i in range(5):
    small.append(make_chunk(seq=i))
  small.append(make_chunk(seq=0, source="eval"))
  assert small.nbytes <= 3 * size
  assert [c.seq for c in small.chunks("train")] == [3, 4]
  assert len(small.chunks("eval")) == 1
  with pytest.raises(ValueError, match="max_chunks"):
    RecentChunks(max_chunks=0)
