"""What a recording lost, counted, and the line that says so.

Record ids go up by one per record over a whole recording, and each
segment's index lists the records it held. :class:`LostRecords` compares
both with the records the reader actually found: what an index lists but
was not read counts as what its entry says it was, and ids missing between
records that were read, with no entry left, as records of unknown kind.
What the writer drops on purpose (a size limit thinning or dropping
segments) is not a loss. :class:`Loss` is the count a
:class:`~braxviewer.record.reader.Recording` gives, :func:`loss_report` its
one line. No JAX.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from braxviewer.record import format as fmt
from braxviewer.record.segment import ROW_DTYPE, Damage, Segment, with_segment

Gap = Tuple[int, int, str]  # first and last missing record id, where


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


class LostRecords:
  """The index rows of records that were not read, and the record ids
  missing with no index entry (:attr:`gaps`).

  Args:
    segments: the recording's segments by number.
    read: every intact record, as ``ROW_DTYPE`` rows.
    size_limited: the recording was written with ``max_bytes`` (the writer
      may have dropped its oldest segments).
  """

  def __init__(
    self,
    segments: Mapping[int, Segment],
    read: np.ndarray,
    size_limited: bool,
  ):
    intact = np.unique(read["rid"])
    lost = []
    for number, seg in segments.items():
      listed = seg.listed
      gone = ~np.isin(listed["rid"], intact)
      # an entry whose record is there under another id is a bad entry
      gone &= ~np.isin(listed["offset"], seg.rows["offset"])
      lost.append(with_segment(listed[gone], number))
    rows = np.concatenate(lost) if lost else np.zeros(0, ROW_DTYPE)
    _, first = np.unique(rows["rid"], return_index=True)
    self.rows: np.ndarray = rows[np.sort(first)]
    # record ids go up by one per record; the writer leaves gaps only where
    # a size limit thinned a segment (level > 0) or dropped the oldest ones
    levels = {n: seg.level for n, seg in segments.items()}
    limited = size_limited or any(level for level in levels.values())
    rid = np.concatenate([read["rid"], self.rows["rid"]]).astype(np.int64)
    segment = np.concatenate([read["segment"], self.rows["segment"]])
    rid, first = np.unique(rid, return_index=True)  # sorted by id
    segment = segment[first]
    self.gaps: List[Gap] = []
    if len(rid) and rid[0] > 0 and not limited:
      at = f"before {fmt.segment_name(int(segment[0]))}"
      self.gaps.append((0, int(rid[0]) - 1, at))
    for i in np.flatnonzero(np.diff(rid) > 1):
      level = levels.get(int(segment[i]))
      if level or (level is None and limited):
        continue  # thinned (or may have been): the writer dropped them
      at = f"after {fmt.segment_name(int(segment[i]))}"
      self.gaps.append((int(rid[i]) + 1, int(rid[i + 1]) - 1, at))

  def add(self, rows: np.ndarray) -> None:
    """Records read but found damaged later (``ROW_DTYPE`` rows)."""
    self.rows = np.concatenate([self.rows, rows])

  def count(self, unreadable_bytes: int) -> Loss:
    """The :class:`Loss`, with the bytes that hold nothing readable."""
    lost = self.rows
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
      unknown_records=sum(b - a + 1 for a, b, _ in self.gaps)
      + int(np.sum((kind == fmt.KIND_CHUNK) & ~chunk)),
      bytes=unreadable_bytes,
    )


def loss_report(
  damage: Sequence[Damage],
  loss: Loss,
  gaps: Sequence[Gap],
  rebuilt_indexes: Sequence[str],
) -> str:
  """One line on what was lost (chunks and their env steps first), then
  the bytes and where, then the indexes read off the records ('' when
  nothing was)."""
  parts = []
  where = [str(d) for d in damage] + [
    f"record ids {a:,}..{b:,} missing ({at}, no index entry)"
    if a < b
    else f"record id {a:,} missing ({at}, no index entry)"
    for a, b, at in gaps
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
    unreadable = sum(d.end - d.start for d in damage)
    lost += ("; " if lost else "") + (
      f"{unreadable:,} bytes lost ({', '.join(what)})"
    )
  if where:
    lost += (
      ": "
      + "; ".join(where[:3])
      + (f"; and {len(where) - 3} more" if len(where) > 3 else "")
    )
  if lost:
    parts.append(lost)
  if rebuilt_indexes:
    parts.append("index read off the records for " + ", ".join(rebuilt_indexes))
  return ". ".join(parts)
