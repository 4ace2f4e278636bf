"""Appending records to segment files, with an optional bound on disk use.

:class:`SegmentWriter` is synchronous and single-threaded (the recorder runs
it on its own thread). Every record is written whole with ``os.write`` before
its index entry, so a process killed at any moment leaves complete records
plus at most one torn tail record, which readers drop. ``fsync`` runs at most
every ``fsync_s`` seconds (and on rotation and close): a killed process loses
nothing written, a power cut at most the last ``fsync_s`` seconds.

When ``max_bytes`` is set and the segments outgrow it, the oldest segments
are thinned: two neighbouring segments of the same thinning level are merged
into one keeping every other training chunk (eval chunks, progress and
stream markers are all kept), so old training is kept at lower density
instead of being cut off. No JAX.
"""

from __future__ import annotations

import dataclasses
import os
import random
import time
from typing import Any, List, Mapping, Optional, Tuple

import numpy as np

from braxviewer.record import format as fmt


@dataclasses.dataclass
class _Segment:
  number: int
  level: int = 0
  size: int = 0  # segment + index bytes
  closed: bool = False


def _write_all(fd: int, data: bytes) -> None:
  view = memoryview(data)
  while view:
    n = os.write(fd, view)
    view = view[n:]


def _fsync_dir(path: str) -> None:
  try:
    fd = os.open(path, os.O_RDONLY)
  except OSError:
    return
  try:
    os.fsync(fd)
  except OSError:
    pass
  finally:
    os.close(fd)


def index_row(
  rid: int,
  offset: int,
  size: int,
  kind: int,
  crc: int,
  *,
  source: int = fmt.NO_SOURCE,
  seq: int = -1,
  env_steps: int = -1,
  num_steps: int = 0,
  num_envs: int = 0,
  wall_time: float = 0.0,
) -> bytes:
  row = np.zeros(1, fmt.INDEX_DTYPE)
  row[0] = (
    rid,
    offset,
    size,
    kind,
    source,
    0,
    0,
    seq,
    env_steps,
    num_steps,
    num_envs,
    wall_time,
  )
  row[0]["crc"] = fmt.seal_row(row[0], crc)
  return row.tobytes()


class SegmentWriter:
  """Writes records into ``directory/seg-NNNNNN.bvr`` (+ ``.bvi`` index).

  Args:
    directory: the recording's directory (exists).
    segment_bytes: start a new segment past this size.
    max_bytes: bound on the segments' total size (None: unbounded).
    fsync_s: fsync at most this often (0: after every record).
  """

  def __init__(
    self,
    directory: str,
    *,
    segment_bytes: int = 64 << 20,
    max_bytes: Optional[int] = None,
    fsync_s: float = 5.0,
  ):
    self.directory = directory
    self.segment_bytes = int(segment_bytes)
    self.max_bytes = None if max_bytes is None else int(max_bytes)
    self.fsync_s = float(fsync_s)
    self._segments: List[_Segment] = []
    self._rid = 0
    self._fd: Optional[int] = None
    self._ifd: Optional[int] = None
    self._last_sync = time.monotonic()
    self.bytes_written = 0
    self.records_written = 0
    self.chunks_thinned = 0
    self.segments_dropped = 0
    self._open_segment(0, level=0)

  # -- segments ----------------------------------------------------------------

  def _path(self, name: str) -> str:
    return os.path.join(self.directory, name)

  def _segment_header(self, number: int, level: int) -> bytes:
    self._generation = random.getrandbits(63)
    return fmt.encode_payload(
      {"segment": number, "level": level, "generation": self._generation}
    )

  def _open_segment(self, number: int, level: int) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    self._fd = os.open(self._path(fmt.segment_name(number)), flags, 0o644)
    self._ifd = os.open(self._path(fmt.index_name(number)), flags, 0o644)
    seg = _Segment(number, level)
    self._segments.append(seg)
    self._offset = 0
    payload = self._segment_header(number, level)
    self._append_raw(fmt.KIND_SEGMENT, payload, seq=self._generation)
    _fsync_dir(self.directory)

  def _files(self) -> Tuple[int, int]:
    """The open segment's record and index file descriptors."""
    if self._fd is None or self._ifd is None:
      raise ValueError("The recording is closed.")
    return self._fd, self._ifd

  def _append_raw(self, kind: int, payload: bytes, **fields: Any) -> int:
    fd, ifd = self._files()
    rid = self._rid
    data, crc = fmt.frame_bytes(kind, rid, payload)
    _write_all(fd, data)
    row = index_row(rid, self._offset, len(data), kind, crc, **fields)
    _write_all(ifd, row)
    self._rid += 1
    self._offset += len(data)
    written = len(data) + len(row)
    self._segments[-1].size += written
    self.bytes_written += written
    return written

  def _sync(self) -> None:
    for fd in (self._fd, self._ifd):
      if fd is not None:
        os.fsync(fd)
    self._last_sync = time.monotonic()

  def _close_segment(self) -> None:
    self._sync()
    fd, ifd = self._files()
    os.close(fd)
    os.close(ifd)
    self._fd = self._ifd = None
    self._segments[-1].closed = True

  # -- public ------------------------------------------------------------------

  def append(
    self,
    kind: int,
    meta: Mapping[str, Any],
    arrays: Optional[Mapping[str, np.ndarray]] = None,
    **fields: Any,
  ) -> int:
    """Write one record; returns the bytes written (record + index entry).

    ``fields`` are the index columns (source, seq, env_steps, num_steps,
    num_envs, wall_time)."""
    payload = fmt.encode_payload(meta, arrays)
    written = self._append_raw(kind, payload, **fields)
    self.records_written += 1
    if self.fsync_s <= 0 or time.monotonic() - self._last_sync >= self.fsync_s:
      self._sync()
    if self._offset >= self.segment_bytes:
      self._close_segment()
      self._open_segment(self._segments[-1].number + 1, level=0)
      self._enforce_limit()
    return written

  def flush(self) -> None:
    """fsync what was written."""
    if self._fd is not None:
      self._sync()

  def close(self) -> None:
    if self._fd is not None:
      self._close_segment()

  @property
  def total_bytes(self) -> int:
    return sum(s.size for s in self._segments)

  # -- disk limit --------------------------------------------------------------

  def _enforce_limit(self) -> None:
    if self.max_bytes is None:
      return
    while self.total_bytes > self.max_bytes:
      closed = [s for s in self._segments if s.closed]
      if not closed:
        return
      level = min(s.level for s in closed)
      # the oldest two neighbours of the lowest level; else the oldest
      # segment of that level with its younger neighbour
      group = None
      for a, b in zip(closed, closed[1:]):
        if a.level == b.level == level:
          group = [a, b]
          break
      if group is None:
        i = next(i for i, s in enumerate(closed) if s.level == level)
        group = (
          closed[i : i + 2] if i + 1 < len(closed) else closed[i - 1 : i + 1]
        )
        group = group if len(group) == 2 else closed[:1]
      if not self._thin(group):
        self._drop(closed[0])

  def _read_segment(self, seg: _Segment):
    with open(self._path(fmt.segment_name(seg.number)), "rb") as f:
      data = f.read()
    index = np.fromfile(
      self._path(fmt.index_name(seg.number)), dtype=fmt.INDEX_DTYPE
    )
    return data, index

  def _thin(self, group: List[_Segment]) -> bool:
    """Merge ``group`` into its first segment, keeping every other training
    chunk. False when there was no training chunk to drop."""
    parts = [self._read_segment(s) for s in group]
    train = [
      (i, j)
      for i, (_, index) in enumerate(parts)
      for j in range(len(index))
      if index[j]["kind"] == fmt.KIND_CHUNK
      and index[j]["source"] == fmt.SOURCE_CODES["train"]
    ]
    if len(train) < 2:
      return False
    dropped = set(train[1::2])
    first = group[0]
    level = max(s.level for s in group) + 1
    seg_tmp = self._path(fmt.segment_name(first.number) + ".tmp")
    idx_tmp = self._path(fmt.index_name(first.number) + ".tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fd = os.open(seg_tmp, flags, 0o644)
    ifd = os.open(idx_tmp, flags, 0o644)
    offset = 0
    size = 0
    try:
      generation = random.getrandbits(63)
      header = fmt.encode_payload(
        {"segment": first.number, "level": level, "generation": generation}
      )
      data, crc = fmt.frame_bytes(
        fmt.KIND_SEGMENT, int(parts[0][1][0]["rid"]), header
      )
      _write_all(fd, data)
      row = index_row(
        int(parts[0][1][0]["rid"]),
        0,
        len(data),
        fmt.KIND_SEGMENT,
        crc,
        seq=generation,
      )
      _write_all(ifd, row)
      offset = len(data)
      size = len(data) + len(row)
      for i, (raw, index) in enumerate(parts):
        for j in range(len(index)):
          entry = index[j]
          if entry["kind"] == fmt.KIND_SEGMENT or (i, j) in dropped:
            continue
          start = int(entry["offset"])
          chunk = raw[start : start + int(entry["size"])]
          _write_all(fd, chunk)
          moved = entry.copy()
          moved["offset"] = offset
          moved["crc"] = fmt.seal_row(moved, fmt.FRAME.unpack_from(chunk)[3])
          _write_all(ifd, moved.tobytes())
          offset += len(chunk)
          size += len(chunk) + fmt.INDEX_DTYPE.itemsize
      os.fsync(fd)
      os.fsync(ifd)
    finally:
      os.close(fd)
      os.close(ifd)
    os.replace(seg_tmp, self._path(fmt.segment_name(first.number)))
    os.replace(idx_tmp, self._path(fmt.index_name(first.number)))
    for seg in group[1:]:
      self._unlink(seg)
    _fsync_dir(self.directory)
    first.level = level
    first.size = size
    self.chunks_thinned += len(dropped)
    return True

  def _unlink(self, seg: _Segment) -> None:
    for name in (fmt.segment_name(seg.number), fmt.index_name(seg.number)):
      try:
        os.unlink(self._path(name))
      except FileNotFoundError:
        pass
    self._segments.remove(seg)

  def _drop(self, seg: _Segment) -> None:
    self._unlink(seg)
    _fsync_dir(self.directory)
    self.segments_dropped += 1
