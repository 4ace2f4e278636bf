"""One segment file of a recording, opened for reading: its index checked
against its records, and the bytes that hold no intact record.

A segment is memory-mapped; its fixed-size index is read in one
``np.fromfile`` and trusted only as far as it agrees with the records it
points to (frame header, and from format version 2 each entry's own seal).
An index that disagrees, or is missing, is rebuilt from the records; a tail
the index missed (a run killed between writing a record and its index
entry) is scanned; damaged records are skipped to the next intact record
header and noted as :class:`Damage`. The reader
(:mod:`braxviewer.record.reader`) reads payloads from here;
:mod:`braxviewer.record.loss` counts what an index listed but was not read.
No JAX.
"""

from __future__ import annotations

import dataclasses
import json
import mmap
import os
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from braxviewer.record import format as fmt

ROW_DTYPE = np.dtype(fmt.INDEX_DTYPE.descr + [("segment", "<u4")])


def with_segment(rows: np.ndarray, number: int) -> np.ndarray:
  """Index ``rows`` of segment ``number`` as ``ROW_DTYPE`` rows."""
  out = np.zeros(len(rows), ROW_DTYPE)
  for name in fmt.INDEX_DTYPE.names or ():  # structured: never None
    out[name] = rows[name]
  out["segment"] = number
  return out


def _meta_of(buf, offset: int) -> Dict[str, Any]:
  start = offset + fmt.FRAME.size
  n = int.from_bytes(buf[start : start + 4], "little")
  return json.loads(bytes(buf[start + 4 : start + 4 + n]))


@dataclasses.dataclass(frozen=True)
class Damage:
  """Bytes of a segment that could not be read, and why."""

  segment: str  # file name
  start: int  # first byte
  end: int  # one past the last byte
  why: str  # e.g. "checksum mismatch (chunk, record 412)", "cut short"

  def __str__(self) -> str:
    return (
      f"{self.segment} bytes {self.start:,}..{self.end:,}"
      f" ({self.end - self.start:,} bytes): {self.why}"
    )


_KIND_NAMES = {
  fmt.KIND_CHUNK: "chunk",
  fmt.KIND_PROGRESS: "progress",
  fmt.KIND_START: "stream start",
  fmt.KIND_END: "stream end",
  fmt.KIND_SEGMENT: "segment header",
}


class Segment:
  """One memory-mapped segment and its checked index rows.

  Index entries are trusted only where they agree with the records they
  point to (frame header, and from format version 2 the entry's own seal);
  when they do not, the index is rebuilt from the records themselves. Bytes
  that hold no intact record are kept in :attr:`damage`; the entries of the
  index that describe this segment's records, read or not, in
  :attr:`listed`.
  """

  def __init__(self, path: str, number: int, version: int):
    self.number = number
    self.path = path
    self.name = os.path.basename(path)
    self.version = version
    self.damage: List[Damage] = []
    self.index_rebuilt = False
    self.listed = np.zeros(0, fmt.INDEX_DTYPE)
    self._file = open(path, "rb")
    size = os.fstat(self._file.fileno()).st_size
    self.size = size
    self.buf = (
      mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
      if size
      else b""
    )
    # the generation in the segment's first record (None: unreadable), and
    # its thinning level when that record is an intact segment header
    self.level: Optional[int] = None
    self._generation: Optional[int] = None
    if fmt.parse_frame(self.buf, 0, self.size) is not None:
      try:
        meta = _meta_of(self.buf, 0)
      except ValueError:
        meta = None
      if isinstance(meta, dict):
        generation = meta.get("generation", -1)
        self._generation = generation if isinstance(generation, int) else -1
        level = meta.get("level")
        if (
          isinstance(level, int)
          and self.buf[4] == fmt.KIND_SEGMENT
          and fmt.check_crc(self.buf, 0)
        ):
          self.level = level
    self.rows = self._rows(path[: -len(fmt.SEGMENT_SUFFIX)] + fmt.INDEX_SUFFIX)

  def close(self) -> None:
    if isinstance(self.buf, mmap.mmap):
      self.buf.close()
    self._file.close()

  def _rows(self, index_path: str) -> np.ndarray:
    try:
      raw = np.fromfile(index_path, dtype=np.uint8)
    except OSError:
      raw = np.zeros(0, np.uint8)
    if not len(raw) and self.size:  # no index: read it off the records
      self.index_rebuilt = True
    whole = len(raw) // fmt.INDEX_DTYPE.itemsize * fmt.INDEX_DTYPE.itemsize
    rows = raw[:whole].view(fmt.INDEX_DTYPE)
    self.listed = self._listing(rows)
    trusted, disagrees = self._trusted_prefix(rows)
    if disagrees:  # an entry does not match the data: rebuild from it
      self.index_rebuilt = True
      rows = rows[:0]
    else:  # entries past the end of a cut segment are dropped
      rows = rows[:trusted]
    # the last indexed record may be torn (written, then the machine died)
    while len(rows) and not fmt.check_crc(self.buf, int(rows[-1]["offset"])):
      rows = rows[:-1]
    end = int(rows[-1]["offset"] + rows[-1]["size"]) if len(rows) else 0
    tail = self._scan(end)  # records after the index (or all: rebuilt)
    if tail:
      rows = np.concatenate([rows, np.array(tail, dtype=fmt.INDEX_DTYPE)])
    self._note_cut()
    return np.array(rows, dtype=fmt.INDEX_DTYPE)

  def _listing(self, rows: np.ndarray) -> np.ndarray:
    """The leading index entries that can describe this segment's records
    whether or not those are still there: they start with the segment
    header at byte 0, lie end to end, with plausible kinds and sizes and
    increasing record ids, and the index is not another generation's."""
    if not len(rows) or rows[0]["kind"] != fmt.KIND_SEGMENT:
      return rows[:0].copy()
    if self._generation is not None and self._generation != int(rows[0]["seq"]):
      return rows[:0].copy()  # the index of another segment
    offset = rows["offset"]
    size = rows["size"]
    ok = (
      np.isin(rows["kind"], fmt.KINDS)
      & (size >= fmt.FRAME.size)
      & (size % 8 == 0)
      & (size < (1 << 48))
    )
    ok[0] &= bool(offset[0] == 0)
    ok[1:] &= (offset[1:] == offset[:-1] + size[:-1]) & (
      rows["rid"][1:] > rows["rid"][:-1]
    )
    bad = np.flatnonzero(~ok)
    return rows[: int(bad[0]) if len(bad) else len(rows)].copy()

  def _note_cut(self) -> None:
    """When the file ends before the records its index lists do (cut, or
    emptied), one :class:`Damage` from the last intact record to where the
    index ends (instead of the torn piece alone)."""
    listed = self.listed
    if not len(listed):
      return
    listed_end = int(listed[-1]["offset"] + listed[-1]["size"])
    if listed_end <= self.size:
      return
    start = self.size
    if self.damage and self.damage[-1].end == self.size:
      last = self.damage[-1]
      if last.why == "cut short":  # the torn piece of the first record cut
        start = last.start
        self.damage.pop()
    if self.size == 0:
      why = f"emptied (its index goes on to byte {listed_end:,})"
    else:
      why = (
        f"cut short (the file ends at byte {self.size:,}, its index goes on"
        f" to byte {listed_end:,})"
      )
    self.damage.append(Damage(self.name, start, listed_end, why))

  def _trusted_prefix(self, rows: np.ndarray) -> Tuple[int, bool]:
    """How many leading entries agree with their records, and whether an
    entry disagrees (rather than pointing past the end of a cut segment).
    An index that does not start with this segment's header is not its."""
    if not len(rows):
      return 0, False
    end = 0
    for i, row in enumerate(rows):
      offset, size = int(row["offset"]), int(row["size"])
      if offset != end:
        return i, True
      if offset + size > self.size:
        return i, False  # the data was cut before this record
      if i == 0 and not self._same_generation(row):
        return 0, True
      frame = fmt.parse_frame(self.buf, offset, self.size)
      if frame is None:
        return i, True
      kind, length, crc, rid = frame
      seal = fmt.seal_row(row, crc) if self.version >= 2 else crc
      if (
        kind != row["kind"]
        or rid != row["rid"]
        or fmt.record_size(length) != size
        or int(row["crc"]) != seal
      ):
        return i, True
      end = offset + size
    return len(rows), False

  def _same_generation(self, row) -> bool:
    if row["kind"] != fmt.KIND_SEGMENT or self._generation is None:
      return False
    return self._generation == int(row["seq"])

  def _scan(self, offset: int) -> List[tuple]:
    """Index rows of the intact records from ``offset`` on. A damaged
    record is skipped (to the next intact record header) and noted in
    :attr:`damage`."""
    out = []
    while offset < self.size:
      frame = fmt.parse_frame(self.buf, offset, self.size)
      if frame is None or not fmt.check_crc(self.buf, offset):
        offset = self._skip_damage(offset, frame)
        continue
      kind, length, crc, rid = frame
      size = fmt.record_size(length)
      row = [rid, offset, size, kind, fmt.NO_SOURCE, 0, 0, -1, -1, 0, 0, 0.0]
      try:
        meta = _meta_of(self.buf, offset)
      except ValueError:
        offset = self._skip_damage(offset, frame)
        continue
      if kind == fmt.KIND_SEGMENT:
        row[7] = int(meta.get("generation", -1))
      elif kind == fmt.KIND_CHUNK:
        shapes = {a[0]: a[2] for a in meta.get("arrays", ())}
        t, n = shapes.get("reward", (0, 0))
        row[4] = fmt.SOURCE_CODES.get(meta.get("source", ""), fmt.NO_SOURCE)
        row[7:12] = [meta["seq"], meta["env_steps"], t, n, meta["wall_time"]]
      elif kind == fmt.KIND_PROGRESS:
        row[8] = int(meta.get("env_steps", -1))
        row[11] = float(meta.get("wall_time", 0.0))
      entry = np.zeros((), fmt.INDEX_DTYPE)
      entry[()] = tuple(row)
      entry["crc"] = fmt.seal_row(entry, crc) if self.version >= 2 else crc
      out.append(entry.item())
      offset += size
    return out

  def _skip_damage(self, offset: int, frame) -> int:
    """Where the next intact record starts after damage at ``offset``."""
    nxt = offset + (fmt.record_size(frame[1]) if frame is not None else 8)
    while nxt < self.size:
      found = self.buf.find(fmt.MAGIC, nxt)
      if found < 0:
        nxt = self.size
        break
      if (
        found % 8 == 0
        and fmt.parse_frame(self.buf, found, self.size)
        and (fmt.check_crc(self.buf, found))
      ):
        nxt = found
        break
      nxt = found + 1
    if frame is None:
      why = "cut short" if nxt >= self.size else "unreadable bytes"
    else:
      kind = _KIND_NAMES.get(frame[0], "record")
      why = f"checksum mismatch ({kind}, record {frame[3]})"
    self.damage.append(Damage(self.name, offset, min(nxt, self.size), why))
    return nxt

  def check_record(self, row) -> bool:
    """Whether the record of index ``row`` passes its checksum (reads its
    payload); one that fails is noted in :attr:`damage`."""
    offset = int(row["offset"])
    if fmt.check_crc(self.buf, offset):
      return True
    kind = _KIND_NAMES.get(int(row["kind"]), "record")
    self.damage.append(
      Damage(
        self.name,
        offset,
        offset + int(row["size"]),
        f"checksum mismatch ({kind}, record {int(row['rid'])})",
      )
    )
    return False

  def payload(self, row) -> memoryview:
    start = int(row["offset"]) + fmt.FRAME.size
    length = int(row["size"]) - fmt.FRAME.size
    return memoryview(self.buf)[start : start + length]
