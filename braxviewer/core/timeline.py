"""Timelines of streamed chunks: what the viewer can scrub through.

A timeline is the chunks of one source (train or eval) in stream order,
indexable, with their index arrays (env steps, sequence numbers, frames) at
hand without reading a chunk. Two kinds share :class:`ChunkSequence`:

* a recording's :class:`~braxviewer.record.reader.ChunkList` (on disk, read
  lazily), used by replay and export;
* :class:`RecentChunks`, the last chunks a live viewer received (in memory,
  bounded), which the live page scrubs through.

The web viewer's :class:`~braxviewer.web.pacing.Player` plays either one the
same way, so scrubbing back during training and replaying a recording are one
code path. Positions are *absolute*: ``start`` is the position of element 0
in the whole stream, so a live timeline that dropped its oldest chunks keeps
the positions of the others. Plain numpy, no JAX, no web.
"""

from __future__ import annotations

import bisect
import collections
import threading
from typing import (
  Deque,
  Dict,
  Iterator,
  List,
  Optional,
  Sequence,
  SupportsIndex,
  Tuple,
  Union,
  overload,
)

import numpy as np

from braxviewer.core.frames import FrameChunk

SOURCES = ("train", "eval")


def _check_source(source: str) -> None:
  if source not in SOURCES:
    raise ValueError(f"source must be 'train' or 'eval', got {source!r}.")


class ChunkSequence(Sequence[FrameChunk]):
  """The chunks of one source in stream order.

  Attributes:
    source: ``"train"`` or ``"eval"``.
    start: stream position of element 0 (chunks before it were dropped).
    env_steps: ``(K,)`` training env steps of each chunk.
    seq: ``(K,)`` their sequence numbers.
    num_steps: ``(K,)`` frames per chunk.
    num_envs: ``(K,)`` envs per chunk.
    wall_time: ``(K,)`` when each chunk left the device.
  """

  source: str
  start: int = 0
  env_steps: np.ndarray
  seq: np.ndarray
  num_steps: np.ndarray
  num_envs: np.ndarray
  wall_time: np.ndarray

  def _read(self, i: int) -> FrameChunk:
    raise NotImplementedError

  def __len__(self) -> int:
    return len(self.env_steps)

  @overload
  def __getitem__(self, i: SupportsIndex) -> FrameChunk: ...

  @overload
  def __getitem__(self, i: slice) -> List[FrameChunk]: ...

  def __getitem__(
    self, i: Union[SupportsIndex, slice]
  ) -> Union[FrameChunk, List[FrameChunk]]:
    if isinstance(i, slice):
      return [self[j] for j in range(*i.indices(len(self)))]
    n = len(self)
    i = int(i)
    if not -n <= i < n:
      raise IndexError(f"chunk {i} out of range: {n} {self.source} chunks.")
    return self._read(i % n)

  def __iter__(self) -> Iterator[FrameChunk]:
    for i in range(len(self)):
      yield self[i]

  @property
  def end(self) -> int:
    """Stream position one past the last chunk."""
    return self.start + len(self)

  @property
  def total_frames(self) -> int:
    return int(self.num_steps.sum())

  def nearest(self, env_steps: int) -> int:
    """Index of the chunk nearest to ``env_steps`` (-1: empty)."""
    if not len(self):
      return -1
    order = np.argsort(self.env_steps, kind="stable")
    steps = self.env_steps[order]
    k = bisect.bisect_left(steps.tolist(), int(env_steps))
    cands = [c for c in (k - 1, k) if 0 <= c < len(steps)]
    best = min(cands, key=lambda c: abs(int(steps[c]) - int(env_steps)))
    return int(order[best])

  def in_range(self, lo: Optional[int], hi: Optional[int]) -> np.ndarray:
    """Indices of the chunks with ``lo <= env_steps <= hi``."""
    ok = np.ones(len(self), bool)
    if lo is not None:
      ok &= self.env_steps >= lo
    if hi is not None:
      ok &= self.env_steps <= hi
    return np.flatnonzero(ok)


class _Snapshot(ChunkSequence):
  """An immutable view of a :class:`RecentChunks` source at one moment."""

  def __init__(self, source: str, start: int, chunks: Tuple[FrameChunk, ...]):
    self.source = source
    self.start = start
    self._chunks = chunks
    self.env_steps = np.array([c.env_steps for c in chunks], np.int64)
    self.seq = np.array([c.seq for c in chunks], np.int64)
    self.num_steps = np.array([c.num_steps for c in chunks], np.int64)
    self.num_envs = np.array([c.num_envs for c in chunks], np.int64)
    self.wall_time = np.array([c.wall_time for c in chunks], np.float64)

  def _read(self, i: int) -> FrameChunk:
    return self._chunks[i]


def chunk_nbytes(chunk: FrameChunk) -> int:
  """Bytes held by a chunk's arrays."""
  arrays = [
    chunk.reward,
    chunk.done,
    chunk.truncation,
    chunk.qpos,
    chunk.link_pos,
    chunk.link_rot,
    chunk.mocap_pos,
    chunk.mocap_quat,
    *chunk.metrics.values(),
    *chunk.info.values(),
  ]
  return sum(int(np.asarray(a).nbytes) for a in arrays if a is not None)


class RecentChunks:
  """The last chunks received, per source, in memory; read like a recording.

  Thread-safe: the trainer's thread appends, the viewer's thread reads
  snapshots (:meth:`chunks`) that later appends do not change.

  Args:
    max_chunks: chunks kept per source (the oldest go first).
    max_bytes: bound on the bytes held by all kept chunks together.
  """

  def __init__(self, max_chunks: int = 64, max_bytes: int = 256 << 20):
    if isinstance(max_chunks, bool) or int(max_chunks) < 1:
      raise ValueError(f"max_chunks must be >= 1, got {max_chunks!r}.")
    if int(max_bytes) < 1:
      raise ValueError(f"max_bytes must be >= 1, got {max_bytes!r}.")
    self.max_chunks = int(max_chunks)
    self.max_bytes = int(max_bytes)
    self._lock = threading.Lock()
    self._kept: Dict[str, Deque[Tuple[FrameChunk, int]]] = {
      s: collections.deque() for s in SOURCES
    }
    self._start = {s: 0 for s in SOURCES}
    self._snap: Dict[str, Optional[_Snapshot]] = {s: None for s in SOURCES}
    self.nbytes = 0

  def append(self, chunk: FrameChunk) -> int:
    """Keep ``chunk``; returns its stream position in its source."""
    source = chunk.source
    _check_source(source)
    size = chunk_nbytes(chunk)
    with self._lock:
      kept = self._kept[source]
      position = self._start[source] + len(kept)
      kept.append((chunk, size))
      self.nbytes += size
      self._snap[source] = None
      while len(kept) > self.max_chunks:
        self._evict(source)
      while self.nbytes > self.max_bytes and self._evict_largest_source():
        pass
      return position

  def _evict(self, source: str) -> None:
    _, size = self._kept[source].popleft()
    self.nbytes -= size
    self._start[source] += 1
    self._snap[source] = None

  def _evict_largest_source(self) -> bool:
    # keep the newest chunk of each source, whatever its size
    cands = [s for s in SOURCES if len(self._kept[s]) > 1]
    if not cands:
      return False
    self._evict(max(cands, key=lambda s: sum(b for _, b in self._kept[s])))
    return True

  def chunks(self, source: str = "train") -> ChunkSequence:
    """The chunks of ``source`` kept now (an immutable snapshot)."""
    _check_source(source)
    with self._lock:
      snap = self._snap[source]
      if snap is None:
        snap = _Snapshot(
          source, self._start[source], tuple(c for c, _ in self._kept[source])
        )
        self._snap[source] = snap
      return snap

  def clear(self) -> None:
    """Forget every chunk (positions go on counting)."""
    with self._lock:
      for source in SOURCES:
        self._start[source] += len(self._kept[source])
        self._kept[source].clear()
        self._snap[source] = None
      self.nbytes = 0
