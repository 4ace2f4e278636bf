"""Reading a recording lazily: an index of record offsets, arrays read from
memory maps on demand.

Opening reads the header and each segment's fixed-size index (one
``np.fromfile`` per segment), checks the index against its segment, verifies
the last record of each segment and scans any tail the index missed (a run
killed between writing a record and its index entry). Payload bytes are only
read, and their CRC checked, when a chunk is asked for. What the index lists
but was not read, and gaps in the record ids, are counted as lost
(:class:`~braxviewer.record.loss.Loss`). The segments themselves are read
by :mod:`braxviewer.record.segment`. No JAX.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np

from braxviewer.core.frames import FrameChunk
from braxviewer.core.protocol import StreamInfo
from braxviewer.core.timeline import ChunkSequence
from braxviewer.record import format as fmt
from braxviewer.record import model_store
from braxviewer.record.loss import Loss, LostRecords, loss_report
from braxviewer.record.segment import (
  ROW_DTYPE,
  Damage,
  Segment,
  with_segment,
)

_SEGMENT_RE = re.compile(
  re.escape(fmt.SEGMENT_PREFIX)
  + r"(\d{6})"
  + re.escape(fmt.SEGMENT_SUFFIX)
  + "$"
)


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
    self._segments: Dict[int, Segment] = {}
    parts = []
    for number in numbers:
      seg = Segment(
        os.path.join(self.path, fmt.segment_name(number)), number, self.version
      )
      self._segments[number] = seg
      parts.append(with_segment(seg.rows, number))
    rows = np.concatenate(parts) if parts else np.zeros(0, ROW_DTYPE)
    self._lost = LostRecords(
      self._segments, rows, self.header.get("max_bytes") is not None
    )
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

  @property
  def loss(self) -> Loss:
    """What was lost, counted (see :class:`~braxviewer.record.loss.Loss`;
    :meth:`verify` adds the records whose payload fails its checksum)."""
    return self._lost.count(self.unreadable_bytes)

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
    keep = np.array(
      [
        self._segments[int(row["segment"])].check_record(row)
        for row in self.rows
      ],
      dtype=bool,
    )
    if not keep.all():
      self._lost.add(self.rows[~keep])
      self.rows = self.rows[keep]
      self._index_chunks()
      self._progress = None
    self.verified = True
    return self.damage

  def report(self) -> str:
    """One line on what was lost (chunks and their env steps first), then
    the bytes and where ('' when nothing was)."""
    return loss_report(
      self.damage, self.loss, self._lost.gaps, self.rebuilt_indexes
    )

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
