"""The on-disk recording format: files, record framing, the index.

A recording is a directory::

    recording.json        header: format name and version, stream info, model files
    model/model.mjb       the compiled MuJoCo model (exact, meshes included)
    model/model.xml       MJCF of the model, when it could be recovered
    model/assets/...      files the XML refers to (meshes, textures), when known
    seg-000000.bvr        records, append-only
    seg-000000.bvi        index of that segment: one fixed-size entry per record

A record is a 32-byte frame header followed by its payload::

    magic  4s   b"BVR1"
    kind   u8   1 chunk, 2 progress, 3 stream start, 4 stream end,
                5 segment header (first record of every segment)
    (pad)  3 bytes
    length u64  payload bytes
    crc    u32  CRC-32 of the header (crc field zero) and the payload
    (pad)  u32
    rid    u64  record id: increases by one per record over the whole recording

and padded with zeros to a multiple of 8 bytes. An index entry (64 bytes,
``INDEX_DTYPE``) repeats what a reader needs without touching the data:
offset, size, kind, source, seq, env steps, frames, envs, wall time; from
format version 2 its ``crc`` is the CRC-32 of the entry itself (crc field
zero), seeded with the CRC of the record it points to, so a damaged entry,
or one pointing at another record, is caught on opening (version 1 entries
copy the record's CRC). A payload is a u32 length, a
UTF-8 JSON object (its fields, and for chunks the name, dtype, shape and
offset of every array) padded to 8 bytes, then the raw little-endian array
bytes, each 8-byte aligned. Arrays can therefore be read straight out of a
memory map. Plain numpy + json + zlib; no JAX.
"""

from __future__ import annotations

import json
import struct
from typing import Any, Dict, List, Mapping, Optional, Tuple
import zlib

import numpy as np

FORMAT_NAME = "braxviewer-recording"
# 2: sealed index entries (readers take 1 and 2). Chunks recorded since
# carry mocap (``mocap_pos``, ``mocap_quat``) and ``info/<name>`` arrays
# when the stream has them: new optional arrays of a chunk record, which
# readers of every version skip or read as absent, so the version stays 2.
FORMAT_VERSION = 2
HEADER_FILE = "recording.json"
MODEL_DIR = "model"
SEGMENT_PREFIX = "seg-"
SEGMENT_SUFFIX = ".bvr"
INDEX_SUFFIX = ".bvi"

MAGIC = b"BVR1"
FRAME = struct.Struct("<4sB3xQII Q".replace(" ", ""))  # 32 bytes
assert FRAME.size == 32

KIND_CHUNK = 1
KIND_PROGRESS = 2
KIND_START = 3
KIND_END = 4
KIND_SEGMENT = 5
KINDS = (KIND_CHUNK, KIND_PROGRESS, KIND_START, KIND_END, KIND_SEGMENT)

SOURCE_CODES = {"train": 0, "eval": 1}
SOURCE_NAMES = {v: k for k, v in SOURCE_CODES.items()}
NO_SOURCE = 255

INDEX_DTYPE = np.dtype(
  [
    ("rid", "<u8"),
    ("offset", "<u8"),  # of the frame header in the segment
    ("size", "<u8"),  # frame header + payload + padding
    ("kind", "u1"),
    ("source", "u1"),
    ("pad", "<u2"),
    ("crc", "<u4"),
    ("seq", "<i8"),
    ("env_steps", "<i8"),
    ("num_steps", "<u4"),
    ("num_envs", "<u4"),
    ("wall_time", "<f8"),
  ]
)
assert INDEX_DTYPE.itemsize == 64


class RecordingError(ValueError):
  """A recording that cannot be read: missing, corrupt or unsupported."""


class RecordingNotFound(RecordingError, FileNotFoundError):
  """No recording at the given path."""


class UnsupportedVersion(RecordingError):
  """A recording written by a newer braxviewer."""


def _pad8(n: int) -> int:
  return (-n) % 8


def segment_name(number: int) -> str:
  return f"{SEGMENT_PREFIX}{number:06d}{SEGMENT_SUFFIX}"


def index_name(number: int) -> str:
  return f"{SEGMENT_PREFIX}{number:06d}{INDEX_SUFFIX}"


def encode_payload(
  meta: Mapping[str, Any], arrays: Optional[Mapping[str, np.ndarray]] = None
) -> bytes:
  """JSON ``meta`` plus raw arrays, laid out as described in the module doc."""
  specs: List[list] = []
  blobs: List[bytes] = []
  offset = 0
  for name, array in (arrays or {}).items():
    a = np.ascontiguousarray(array)
    if a.dtype.byteorder == ">":
      a = a.astype(a.dtype.newbyteorder("<"))
    specs.append([name, a.dtype.str, list(a.shape), offset])
    raw = a.tobytes()
    blobs.append(raw + b"\0" * _pad8(len(raw)))
    offset += len(blobs[-1])
  body = dict(meta)
  if specs:
    body["arrays"] = specs
  text = json.dumps(body, separators=(",", ":")).encode()
  head = struct.pack("<I", len(text)) + text
  head += b"\0" * _pad8(len(head))
  return head + b"".join(blobs)


def decode_payload(payload) -> Tuple[Dict[str, Any], Dict[str, np.ndarray]]:
  """Inverse of :func:`encode_payload`; arrays are copies (bit-exact)."""
  view = memoryview(payload)
  (n,) = struct.unpack_from("<I", view, 0)
  meta = json.loads(bytes(view[4 : 4 + n]))
  base = 4 + n + _pad8(4 + n)
  arrays = {}
  for name, dtype, shape, offset in meta.pop("arrays", ()):
    dt = np.dtype(dtype)
    count = int(np.prod(shape, dtype=np.int64))
    a = np.frombuffer(view, dtype=dt, count=count, offset=base + offset)
    arrays[name] = a.reshape(shape).copy()
  return meta, arrays


def frame_bytes(kind: int, rid: int, payload: bytes) -> Tuple[bytes, int]:
  """The whole record (header, payload, padding) and its CRC."""
  blank = FRAME.pack(MAGIC, kind, len(payload), 0, 0, rid)
  crc = zlib.crc32(payload, zlib.crc32(blank)) & 0xFFFFFFFF
  head = FRAME.pack(MAGIC, kind, len(payload), crc, 0, rid)
  return head + payload + b"\0" * _pad8(len(payload)), crc


def parse_frame(
  buf, offset: int, limit: int
) -> Optional[Tuple[int, int, int, int]]:
  """``(kind, payload_length, crc, rid)`` of the frame header at ``offset``,
  or None when no complete, plausible header starts there."""
  if offset + FRAME.size > limit:
    return None
  magic, kind, length, crc, _, rid = FRAME.unpack_from(buf, offset)
  if magic != MAGIC or kind not in KINDS:
    return None
  if offset + FRAME.size + length > limit:
    return None
  return kind, length, crc, rid


def check_crc(buf, offset: int) -> bool:
  """Whether the record at ``offset`` is intact (its CRC matches)."""
  magic, kind, length, crc, _, rid = FRAME.unpack_from(buf, offset)
  blank = FRAME.pack(magic, kind, length, 0, 0, rid)
  start = offset + FRAME.size
  got = zlib.crc32(memoryview(buf)[start : start + length], zlib.crc32(blank))
  return (got & 0xFFFFFFFF) == crc


def seal_row(row: np.ndarray, record_crc: int) -> int:
  """The version-2 ``crc`` of an index entry: CRC-32 of the entry with its
  crc field zero, seeded with its record's CRC."""
  blank = np.array(row, dtype=INDEX_DTYPE).reshape(())
  blank["crc"] = 0
  return zlib.crc32(blank.tobytes(), record_crc) & 0xFFFFFFFF


def record_size(payload_length: int) -> int:
  return FRAME.size + payload_length + _pad8(payload_length)


# -- what goes into a record -------------------------------------------------

_POSE_FIELDS = ("qpos", "link_pos", "link_rot", "mocap_pos", "mocap_quat")


def chunk_record(chunk) -> Tuple[Dict[str, Any], Dict[str, np.ndarray]]:
  """A :class:`~braxviewer.core.frames.FrameChunk` as (meta, arrays)."""
  meta = dict(
    seq=int(chunk.seq),
    source=chunk.source,
    env_steps=int(chunk.env_steps),
    dt=float(chunk.dt),
    wall_time=float(chunk.wall_time),
    metrics=list(chunk.metrics),
  )
  info = getattr(chunk, "info", None) or {}
  if info:
    meta["info"] = list(info)
  arrays = {
    "reward": chunk.reward,
    "done": chunk.done,
    "truncation": chunk.truncation,
  }
  for name in _POSE_FIELDS:
    value = getattr(chunk, name)
    if value is not None:
      arrays[name] = value
  for name, value in chunk.metrics.items():
    arrays["metrics/" + name] = value
  for name, value in info.items():
    arrays["info/" + name] = value
  return meta, {k: np.asarray(v) for k, v in arrays.items()}


def chunk_from_record(
  meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]
):
  """Inverse of :func:`chunk_record`."""
  from braxviewer.core.frames import FrameChunk

  return FrameChunk(
    seq=int(meta["seq"]),
    source=meta["source"],
    env_steps=int(meta["env_steps"]),
    dt=float(meta["dt"]),
    reward=arrays["reward"],
    done=arrays["done"],
    truncation=arrays["truncation"],
    metrics={k: arrays["metrics/" + k] for k in meta.get("metrics", ())},
    wall_time=float(meta["wall_time"]),
    qpos=arrays.get("qpos"),
    link_pos=arrays.get("link_pos"),
    link_rot=arrays.get("link_rot"),
    mocap_pos=arrays.get("mocap_pos"),
    mocap_quat=arrays.get("mocap_quat"),
    info={k: arrays["info/" + k] for k in meta.get("info", ())},
  )
