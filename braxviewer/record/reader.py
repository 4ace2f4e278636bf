"""Reading a recording lazily: an index of record offsets, arrays read from
memory maps on demand.

Opening reads the header and each segment's fixed-size index (one
``np.fromfile`` per segment), checks the index against its segment, verifies
the last record of each segment and scans any tail the index missed (a run
killed between writing a record and its index entry). Payload bytes are only
read, and their CRC checked, when a chunk is asked for. What the index lists
but was not read, and gaps in the record ids, are counted as lost
(:class:`Loss`). No JAX.
"""

from __future__ import annotations

import dataclasses
import json
import mmap
import os
import re
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np

from braxviewer.core.frames import FrameChunk
from braxviewer.core.protocol import StreamInfo
from braxviewer.core.timeline import ChunkSequence
from braxviewer.record import format as fmt
from braxviewer.record import model_store

_SEGMENT_RE = re.compile(
  re.escape(fmt.SEGMENT_PREFIX)
  + r"(\d{6})"
  + re.escape(fmt.SEGMENT_SUFFIX)
  + "$"
)

ROW_DTYPE = np.dtype(fmt.INDEX_DTYPE.descr + [("segment", "<u4")])


def _with_segment(rows: np.ndarray, number: int) -> np.ndarray:
  out = np.zeros(len(rows), ROW_DTYPE)
  for name in fmt.INDEX_DTYPE.names or ():  # structured: never None
    out[name] = rows[name]
  out["segment"] = number
  return out


def _read_header(path: str) -> Dict[str, Any]:
  header_path = os.path.join(path, fmt.HEADER_FILE)
  if not os.path.isdir(path):
    raise fmt.RecordingNotFound(f"no recording at {path}: no such directory.")
  if not os.path.isfile(header_path):
    raise fmt.RecordingNotFound(
      f"{path} is not a braxviewer recording (it has no {fmt.HEADER_FILE})."
    )
  try:
    with open(header_path, encoding="utf-8") as f:
      header = json.load(f)
  except (OSError, ValueError) as err:
    raise fmt.RecordingError(
      f"the recording at {path} is corrupt: its {fmt.HEADER_FILE} cannot be"
      f" read ({type(err).__name__}: {err})."
    ) from None
  if not isinstance(header, dict) or header.get("format") != fmt.FORMAT_NAME:
    raise fmt.RecordingError(
      f"{path} is not a braxviewer recording ({fmt.HEADER_FILE} does not"
      f" say format {fmt.FORMAT_NAME!r})."
    )
  version = header.get("version")
  if not isinstance(version, int) or version < 1:
    raise fmt.RecordingError(
      f"the recording at {path} is corrupt: bad format version {version!r}."
    )
  if version > fmt.FORMAT_VERSION:
    raise fmt.UnsupportedVersion(
      f"the recording at {path} has format version {version}, newer than"
      f" this braxviewer reads ({fmt.FORMAT_VERSION}); upgrade braxviewer."
    )
  return header


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


def _plural(n: int, one: str, many: str) -> str:
  return f"{n:,} {one if n == 1 else many}"


def _and(items: List[str]) -> str:
  return (
    ", ".join(items[:-1]) + " and " + items[-1]
    if len(items) > 1
    else "".join(items)
  )


_SOURCE_WORDS = {"train": ("training chunk", "training chunks")}


@dataclasses.dataclass(frozen=True)
class Loss:
  """What a recording lost, counted from the records actually read against
  the segments' indexes and the record ids (which go up by one per record).

  Records the index lists but that were not read (cut off, in an emptied
  segment, failing their checks, or dropped by :meth:`Recording.verify`)
  are counted by what their index entry says; ids missing between records
  that were read, with no entry left, are ``unknown_records``. What the
  writer drops on purpose (``max_bytes``: thinning, the oldest segments) is
  not a loss, nor a torn record at the very end (an interrupted write),
  whose bytes still count in ``bytes``.

  Attributes:
    chunks: lost chunks per source (``"train"``, ``"eval"``).
    env_steps: ``(first, last)`` training env steps of the lost chunks.
    frames: frames in the lost chunks.
    progress: lost progress reports.
    markers: lost stream start / end markers.
    unknown_records: records lost with no index entry to say what they were.
    bytes: bytes of the segments that hold nothing readable
      (:attr:`Recording.unreadable_bytes`).
  """

  chunks: Dict[str, int] = dataclasses.field(
    default_factory=lambda: {name: 0 for name in fmt.SOURCE_CODES}
  )
  env_steps: Optional[Tuple[int, int]] = None
  frames: int = 0
  progress: int = 0
  markers: int = 0
  unknown_records: int = 0
  bytes: int = 0

  @property
  def records(self) -> int:
    """Lost records (chunks, progress reports, markers, unknown)."""
    return (
      sum(self.chunks.values())
      + self.progress
      + self.markers
      + self.unknown_records
    )

  def __bool__(self) -> bool:
    return bool(self.records or self.bytes)

  def __str__(self) -> str:
    """What was lost, chunks and env steps first ('' when no record was)."""
    items = [
      _plural(n, *_SOURCE_WORDS.get(name, (f"{name} chunk", f"{name} chunks")))
      for name, n in self.chunks.items()
      if n
    ]
    if items:
      said = []
      if self.env_steps is not None:
        lo, hi = self.env_steps
        said.append(
          f"env step {lo:,}" if lo == hi else f"env steps {lo:,}..{hi:,}"
        )
      said.append(_plural(self.frames, "frame", "frames"))
      items[-1] += f" ({', '.join(said)})"
    if self.progress:
      items.append(
        _plural(self.progress, "progress report", "progress reports")
      )
    if self.markers:
      items.append(_plural(self.markers, "stream marker", "stream markers"))
    if self.unknown_records:
      items.append(
        _plural(
          self.unknown_records,
          "record of unknown kind",
          "records of unknown kind",
        )
      )
    return _and(items)


_KIND_NAMES = {
  fmt.KIND_CHUNK: "chunk",
  fmt.KIND_PROGRESS: "progress",
  fmt.KIND_START: "stream start",
  fmt.KIND_END: "stream end",
  fmt.KIND_SEGMENT: "segment header",
}


class _Segment:
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

  def payload(self, row) -> memoryview:
    start = int(row["offset"]) + fmt.FRAME.size
    length = int(row["size"]) - fmt.FRAME.size
    return memoryview(self.buf)[start : start + length]


class ChunkList(ChunkSequence):
  """The chunks of one source, in recorded order, read on demand.

  A :class:`~braxviewer.core.timeline.ChunkSequence` (``start`` is 0): the index
  arrays come from the recording's index; a chunk's bytes are read, and
  checked, when it is asked for.

  Attributes:
    env_steps: ``(K,)`` training env steps of each chunk.
    seq: ``(K,)`` their sequence numbers (gaps: dropped or thinned chunks).
    num_steps: ``(K,)`` frames per chunk.
    wall_time: ``(K,)`` when each chunk left the device.
  """

  def __init__(self, recording: "Recording", rows: np.ndarray, source: str):
    self._recording = recording
    self._rows = rows
    self.source = source
    self.start = 0
    self.env_steps = rows["env_steps"].astype(np.int64)
    self.seq = rows["seq"].astype(np.int64)
    self.num_steps = rows["num_steps"].astype(np.int64)
    self.num_envs = rows["num_envs"].astype(np.int64)
    self.wall_time = rows["wall_time"].astype(np.float64)

  def _read(self, i: int) -> FrameChunk:
    return self._recording.read_chunk(self._rows[i])


class Recording:
  """A recording opened for reading.

  Args:
    path: the recording's directory.

  Raises:
    RecordingNotFound: no recording there.
    UnsupportedVersion: written by a newer braxviewer.
    RecordingError: header unreadable or not a recording.
  """

  def __init__(self, path: "str | os.PathLike"):
    self.path = os.fspath(path)
    self.header = _read_header(self.path)
    self.version: int = self.header["version"]
    numbers = sorted(
      int(m.group(1))
      for m in map(_SEGMENT_RE.match, os.listdir(self.path))
      if m
    )
    self._segments: Dict[int, _Segment] = {}
    parts = []
    for number in numbers:
      seg = _Segment(
        os.path.join(self.path, fmt.segment_name(number)), number, self.version
      )
      self._segments[number] = seg
      parts.append(_with_segment(seg.rows, number))
    rows = np.concatenate(parts) if parts else np.zeros(0, ROW_DTYPE)
    self._count_lost(rows)
    rows = rows[rows["kind"] != fmt.KIND_SEGMENT]
    if len(rows) > 1 and not (np.diff(rows["rid"].astype(np.int64)) > 0).all():
      _, first = np.unique(rows["rid"], return_index=True)
      rows = rows[np.sort(first)]
      rows = rows[np.argsort(rows["rid"], kind="stable")]
    self.rows = rows
    self._index_chunks()
    self._progress: Optional[List[Tuple[int, Dict[str, float]]]] = None
    self._model = None
    self.verified = False

  def _index_chunks(self) -> None:
    kind = self.rows["kind"]
    self._chunks = {
      name: ChunkList(
        self,
        self.rows[(kind == fmt.KIND_CHUNK) & (self.rows["source"] == code)],
        name,
      )
      for name, code in fmt.SOURCE_CODES.items()
    }

  # -- damage ------------------------------------------------------------------

  def _count_lost(self, read: np.ndarray) -> None:
    """What the indexes list but was not read, and the record ids missing
    between records that were (``read``: every intact record)."""
    intact = np.unique(read["rid"])
    lost = []
    for number, seg in self._segments.items():
      listed = seg.listed
      gone = ~np.isin(listed["rid"], intact)
      # an entry whose record is there under another id is a bad entry
      gone &= ~np.isin(listed["offset"], seg.rows["offset"])
      lost.append(_with_segment(listed[gone], number))
    rows = np.concatenate(lost) if lost else np.zeros(0, ROW_DTYPE)
    _, first = np.unique(rows["rid"], return_index=True)
    self._lost: np.ndarray = rows[np.sort(first)]
    # record ids go up by one per record; the writer leaves gaps only where
    # a size limit thinned a segment (level > 0) or dropped the oldest ones
    levels = {n: seg.level for n, seg in self._segments.items()}
    limited = self.header.get("max_bytes") is not None or any(
      level for level in levels.values()
    )
    rid = np.concatenate([read["rid"], self._lost["rid"]]).astype(np.int64)
    segment = np.concatenate([read["segment"], self._lost["segment"]])
    rid, first = np.unique(rid, return_index=True)  # sorted by id
    segment = segment[first]
    self._gaps: List[Tuple[int, int, str]] = []  # first, last id, where
    if len(rid) and rid[0] > 0 and not limited:
      at = f"before {fmt.segment_name(int(segment[0]))}"
      self._gaps.append((0, int(rid[0]) - 1, at))
    for i in np.flatnonzero(np.diff(rid) > 1):
      level = levels.get(int(segment[i]))
      if level or (level is None and limited):
        continue  # thinned (or may have been): the writer dropped them
      at = f"after {fmt.segment_name(int(segment[i]))}"
      self._gaps.append((int(rid[i]) + 1, int(rid[i + 1]) - 1, at))

  @property
  def loss(self) -> Loss:
    """What was lost, counted (see :class:`Loss`; :meth:`verify` adds the
    records whose payload fails its checksum)."""
    lost = self._lost
    kind = lost["kind"]
    chunk = (kind == fmt.KIND_CHUNK) & np.isin(
      lost["source"], list(fmt.SOURCE_NAMES)
    )
    steps = lost["env_steps"][chunk].astype(np.int64)
    return Loss(
      chunks={
        name: int(np.sum(chunk & (lost["source"] == code)))
        for name, code in fmt.SOURCE_CODES.items()
      },
      env_steps=(int(steps.min()), int(steps.max())) if len(steps) else None,
      frames=int(lost["num_steps"][chunk].astype(np.int64).sum()),
      progress=int(np.sum(kind == fmt.KIND_PROGRESS)),
      markers=int(np.sum((kind == fmt.KIND_START) | (kind == fmt.KIND_END))),
      unknown_records=sum(b - a + 1 for a, b, _ in self._gaps)
      + int(np.sum((kind == fmt.KIND_CHUNK) & ~chunk)),
      bytes=self.unreadable_bytes,
    )

  @property
  def damage(self) -> List[Damage]:
    """The bytes that could not be read, segment by segment (empty: no
    bytes lost as far as opened; :meth:`verify` also checks every record's
    payload). :attr:`loss` counts the records lost."""
    return [d for s in self._segments.values() for d in s.damage]

  @property
  def unreadable_bytes(self) -> int:
    return sum(d.end - d.start for d in self.damage)

  @property
  def rebuilt_indexes(self) -> List[str]:
    """Segments whose index disagreed with their records (or was missing)
    and was read off the records instead."""
    return [s.name for s in self._segments.values() if s.index_rebuilt]

  def verify(self) -> List[Damage]:
    """Check every record's checksum (reads all the data once); records
    that fail are dropped from the chunks and the progress, added to
    :attr:`damage` and counted in :attr:`loss`. Returns the damage."""
    if self.verified:
      return self.damage
    keep = np.ones(len(self.rows), bool)
    for i, row in enumerate(self.rows):
      seg = self._segments[int(row["segment"])]
      offset = int(row["offset"])
      if not fmt.check_crc(seg.buf, offset):
        keep[i] = False
        kind = _KIND_NAMES.get(int(row["kind"]), "record")
        seg.damage.append(
          Damage(
            seg.name,
            offset,
            offset + int(row["size"]),
            f"checksum mismatch ({kind}, record {int(row['rid'])})",
          )
        )
    if not keep.all():
      self._lost = np.concatenate([self._lost, self.rows[~keep]])
      self.rows = self.rows[keep]
      self._index_chunks()
      self._progress = None
    self.verified = True
    return self.damage

  def report(self) -> str:
    """One line on what was lost (chunks and their env steps first), then
    the bytes and where ('' when nothing was)."""
    damage = self.damage
    loss = self.loss
    parts = []
    where = [str(d) for d in damage] + [
      f"record ids {a:,}..{b:,} missing ({at}, no index entry)"
      if a < b
      else f"record id {a:,} missing ({at}, no index entry)"
      for a, b, at in self._gaps
    ]
    lost = str(loss)
    if lost:
      lost += " lost"
    if damage:
      records = sum(d.why.startswith("checksum mismatch") for d in damage)
      what = []
      if records:
        what.append(_plural(records, "damaged record", "damaged records"))
      if len(damage) > records:
        what.append(
          _plural(
            len(damage) - records, "unreadable stretch", "unreadable stretches"
          )
        )
      lost += ("; " if lost else "") + (
        f"{self.unreadable_bytes:,} bytes lost ({', '.join(what)})"
      )
    if where:
      lost += (
        ": "
        + "; ".join(where[:3])
        + (f"; and {len(where) - 3} more" if len(where) > 3 else "")
      )
    if lost:
      parts.append(lost)
    if self.rebuilt_indexes:
      parts.append(
        "index read off the records for " + ", ".join(self.rebuilt_indexes)
      )
    return ". ".join(parts)

  # -- contents ------------------------------------------------------------

  def chunks(self, source: str = "train") -> ChunkList:
    """The recorded chunks of ``source`` (``"train"`` or ``"eval"``)."""
    if source not in self._chunks:
      raise ValueError(f"source must be 'train' or 'eval', got {source!r}.")
    return self._chunks[source]

  @property
  def stream_info(self) -> Optional[StreamInfo]:
    """What the (last) training run streamed, or None."""
    info = self.header.get("stream_info")
    if not info:
      return None
    fields = dict(info)
    fields["reward_terms"] = tuple(fields.get("reward_terms", ()))
    fields["info_keys"] = tuple(fields.get("info_keys", ()))
    fields["info_shapes"] = tuple(
      tuple(int(n) for n in shape) for shape in fields.get("info_shapes", ())
    )
    known = StreamInfo.__dataclass_fields__
    return StreamInfo(**{k: v for k, v in fields.items() if k in known})

  def progress(self) -> List[Tuple[int, Dict[str, float]]]:
    """Every recorded ``(env_steps, metrics)`` progress report, in order."""
    if self._progress is None:
      out = []
      for row in self.rows[self.rows["kind"] == fmt.KIND_PROGRESS]:
        try:
          meta, _ = self._decode(row)
        except fmt.RecordingError:
          continue
        out.append((int(meta["env_steps"]), dict(meta.get("metrics", {}))))
      self._progress = out
    return self._progress

  def model(self):
    """The recorded ``mujoco.MjModel`` (cached)."""
    if self._model is None:
      entry = self.header.get("model") or {}
      self._model = model_store.load(
        os.path.join(self.path, fmt.MODEL_DIR), entry
      )
    return self._model

  @property
  def has_model(self) -> bool:
    return bool(self.header.get("model"))

  # -- reading ---------------------------------------------------------------

  def _decode(self, row) -> Tuple[Dict[str, Any], Dict[str, np.ndarray]]:
    seg = self._segments[int(row["segment"])]
    offset = int(row["offset"])
    if not fmt.check_crc(seg.buf, offset):
      raise fmt.RecordingError(
        f"record {int(row['rid'])} of {seg.path} is corrupt (checksum"
        " mismatch)."
      )
    return fmt.decode_payload(seg.payload(row))

  def read_chunk(self, row) -> FrameChunk:
    """The chunk of an index row (arrays are bit-exact copies)."""
    meta, arrays = self._decode(row)
    return fmt.chunk_from_record(meta, arrays)

  def close(self) -> None:
    for seg in self._segments.values():
      seg.close()
    self._segments.clear()

  def __enter__(self) -> "Recording":
    return self

  def __exit__(self, *exc) -> None:
    self.close()

  def summary(self) -> Mapping[str, Any]:
    """Counts for messages: chunks per source, env-step range, frames."""
    train = self.chunks("train")
    return dict(
      train_chunks=len(train),
      eval_chunks=len(self.chunks("eval")),
      frames=train.total_frames,
      env_steps=(
        (int(train.env_steps.min()), int(train.env_steps.max()))
        if len(train)
        else None
      ),
      num_envs=(int(train.num_envs.max()) if len(train) else None),
    )


def open_recording(path: "str | os.PathLike") -> Recording:
  """Open the recording at ``path`` (see :class:`Recording`)."""
  return Recording(path)
