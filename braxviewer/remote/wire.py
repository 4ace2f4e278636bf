"""The messages between a training run and a viewer server: one typed source
of truth, and their encoding (msgpack, arrays as raw little-endian bytes).

A run (``braxviewer.connect``) opens one websocket to the server's
:data:`PATH` on the page's port and sends :class:`Hello`, then what the
trainer tells any viewer (:class:`Model`, :class:`Start`, :class:`Chunk`,
:class:`Progress`, :class:`Phase`, :class:`TrainerMode`, :class:`End`). The
server answers :class:`Welcome` (the run's name on the page), then
:class:`Control` whenever what the run should stream changes, :class:`Shown`
for a sync chunk once it was on screen, :class:`Holding` while one is
still being shown (a run that hears neither stops waiting), and
:class:`Rejected` for a message it refused. Anything that
does not decode raises :class:`WireError` (the receiver drops that
connection); what a message asks of the server is checked there
(:mod:`braxviewer.remote.trust`).

Every message is one class here: a frozen dataclass deriving from
:class:`Message`, which registers it under its ``kind`` (the tag on the
wire) with its ``drop`` priority (what a full outbox may push out for it);
a message with arrays or nested types says how its body is written
(``body``/``from_body``). Sender and receiver dispatch on the class
(``handlers[type(message)]``): adding a message is one class and one
handler. No JAX, no web.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Dict, Mapping, Optional, Tuple, Type

import msgpack
import numpy as np

from braxviewer.core.frames import FrameChunk
from braxviewer.core.protocol import StreamInfo
from braxviewer.record.format import chunk_from_record, chunk_record

VERSION = 2  # bumped when a message changes shape (2: run keys, Holding)
PATH = "/braxviewer/train"  # the training socket's path on the page's port
MAX_MESSAGE_BYTES = 64 << 20  # one message at most (a chunk, a model)


class WireError(ValueError):
  """A message that is not one of ours (or of another version)."""


# What a message in a full outbox is (see ``remote/client.py``'s outbox): a
# chunk pushes out older chunks, a report older reports or chunks; control
# messages (the model, a stream's start and end) are never dropped.
CHUNK, PROGRESS, CONTROL = "chunk", "progress", "control"


class Message:
  """A wire message. Subclasses are frozen dataclasses, registered by
  ``kind`` with their ``drop`` priority::

    @dataclasses.dataclass(frozen=True)
    class Phase(Message, kind="phase", drop=PROGRESS):
      name: str
  """

  kind: ClassVar[str] = ""
  drop: ClassVar[str] = CONTROL
  registry: ClassVar[Dict[str, Type["Message"]]] = {}

  def __init_subclass__(cls, kind: str = "", drop: str = CONTROL, **kw: Any):
    super().__init_subclass__(**kw)
    if not kind or kind in Message.registry:
      raise TypeError(f"wire message {cls.__name__}: a new kind, got {kind!r}.")
    if drop not in (CHUNK, PROGRESS, CONTROL):
      raise TypeError(f"wire message {cls.__name__}: drop {drop!r}.")
    cls.kind, cls.drop = kind, drop
    Message.registry[kind] = cls

  def body(self) -> Dict[str, Any]:
    """The message's fields as msgpack can write them."""
    return dataclasses.asdict(self)  # type: ignore[call-overload]

  @classmethod
  def from_body(cls, body: Dict[str, Any]) -> "Message":
    """The message from :meth:`body`'s output (raises on a bad body)."""
    return cls(**body)


# -- run -> server -------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Hello(Message, kind="hello"):
  """First message of a connection. ``named``: the user chose ``run``;
  ``key``: the run's own secret: a connection joins the run of that name
  only with the same key (the processes of one multi-host job, a run
  reconnecting); otherwise a taken name gets a suffix."""

  run: str
  named: bool
  host: str
  pid: int
  key: str = ""
  version: int = VERSION


@dataclasses.dataclass(frozen=True)
class Model(Message, kind="model"):
  """The env's compiled model (MJB bytes) and, when it has one, a portable
  XML with its assets (for a recording on the server)."""

  mjb: bytes
  xml: Optional[str] = None
  assets: Mapping[str, bytes] = dataclasses.field(default_factory=dict)
  note: str = ""

  def body(self) -> Dict[str, Any]:
    return {
      "mjb": bytes(self.mjb),
      "xml": self.xml,
      "assets": {str(k): bytes(v) for k, v in self.assets.items()},
      "note": self.note,
    }


@dataclasses.dataclass(frozen=True)
class Start(Message, kind="start"):
  """The stream's info, and which process of how many sends it. ``again``:
  re-sent after a reconnect (the same stream goes on)."""

  info: StreamInfo
  process: int = 0
  processes: int = 1
  again: bool = False

  def body(self) -> Dict[str, Any]:
    return {
      "info": _info_fields(self.info),
      "process": int(self.process),
      "processes": int(self.processes),
      "again": bool(self.again),
    }

  @classmethod
  def from_body(cls, body: Dict[str, Any]) -> "Start":
    return cls(
      _info(body["info"]),
      int(body["process"]),
      int(body["processes"]),
      bool(body["again"]),
    )


@dataclasses.dataclass(frozen=True)
class Chunk(Message, kind="chunk", drop=CHUNK):
  """A chunk; ``ack``: the run waits for :class:`Shown` (sync)."""

  chunk: FrameChunk
  ack: bool = False

  def body(self) -> Dict[str, Any]:
    meta, arrays = chunk_record(self.chunk)
    return {"meta": meta, "arrays": _arrays(arrays), "ack": bool(self.ack)}

  @classmethod
  def from_body(cls, body: Dict[str, Any]) -> "Chunk":
    arrays = _from_arrays(body["arrays"])
    return cls(chunk_from_record(body["meta"], arrays), bool(body["ack"]))


@dataclasses.dataclass(frozen=True)
class Progress(Message, kind="progress", drop=PROGRESS):
  """A progress report; ``index`` counts the stream's reports from 0 (a run
  sends its recent reports again after a reconnect: a server keeps each
  index once)."""

  env_steps: int
  metrics: Mapping[str, float]
  index: int = -1

  def body(self) -> Dict[str, Any]:
    return {
      "env_steps": int(self.env_steps),
      "metrics": {str(k): float(v) for k, v in self.metrics.items()},
      "index": int(self.index),
    }

  @classmethod
  def from_body(cls, body: Dict[str, Any]) -> "Progress":
    metrics = {str(k): float(v) for k, v in body["metrics"].items()}
    return cls(int(body["env_steps"]), metrics, int(body.get("index", -1)))


@dataclasses.dataclass(frozen=True)
class Phase(Message, kind="phase", drop=PROGRESS):
  name: str


@dataclasses.dataclass(frozen=True)
class TrainerMode(Message, kind="trainermode", drop=PROGRESS):
  mode: str


@dataclasses.dataclass(frozen=True)
class End(Message, kind="end"):
  """The training run ended (its stream; the connection may stay)."""


# -- server -> run -------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Welcome(Message, kind="welcome"):
  """The run's name on the server (the asked one, or with a suffix);
  ``taken``: the name belongs to another run (another key)."""

  run: str
  taken: bool = False
  version: int = VERSION


@dataclasses.dataclass(frozen=True)
class Control(Message, kind="control"):
  """What the run should stream now: the mode, from which process and which
  of its local devices."""

  mode: str
  process: int = 0
  device: int = 0


@dataclasses.dataclass(frozen=True)
class Shown(Message, kind="shown"):
  """A sync chunk was shown (or will not be): the run goes on."""

  source: str
  seq: int


@dataclasses.dataclass(frozen=True)
class Holding(Message, kind="holding"):
  """A sync chunk is still being shown (paced, or held by a paused page):
  the run keeps waiting. Sent about once a second while it lasts."""

  source: str
  seq: int


@dataclasses.dataclass(frozen=True)
class Rejected(Message, kind="rejected"):
  """The server refused a message of the run (``what``: its kind) and
  dropped it; ``why`` says what to change."""

  what: str
  why: str


# -- encoding ------------------------------------------------------------------


def _arrays(arrays: Mapping[str, np.ndarray]) -> list:
  out = []
  for name, array in arrays.items():
    a = np.ascontiguousarray(array)
    if a.dtype.byteorder == ">":
      a = a.astype(a.dtype.newbyteorder("<"))
    out.append([name, a.dtype.str, list(a.shape), a.tobytes()])
  return out


def _from_arrays(items: Any) -> Dict[str, np.ndarray]:
  out = {}
  for name, dtype, shape, raw in items:
    dt = np.dtype(dtype)
    if dt.hasobject:
      raise WireError(f"array {name!r} has dtype {dtype!r}: not a number.")
    count = int(np.prod(shape, dtype=np.int64))
    if count * dt.itemsize != len(raw):
      raise WireError(f"array {name!r}: {len(raw)} bytes for shape {shape}.")
    out[str(name)] = np.frombuffer(raw, dt, count).reshape(shape).copy()
  return out


def _info_fields(info: StreamInfo) -> Dict[str, Any]:
  fields = dataclasses.asdict(info)
  fields["info_shapes"] = [list(s) for s in info.info_shapes]
  return fields


def _info(fields: Mapping[str, Any]) -> StreamInfo:
  known = {f.name for f in dataclasses.fields(StreamInfo)}
  kw = {k: v for k, v in fields.items() if k in known}
  kw["reward_terms"] = tuple(kw.get("reward_terms", ()))
  kw["info_keys"] = tuple(kw.get("info_keys", ()))
  kw["info_shapes"] = tuple(tuple(s) for s in kw.get("info_shapes", ()))
  return StreamInfo(**kw)


def encode(message: Message) -> bytes:
  """One message as bytes."""
  if type(message).kind not in Message.registry:
    raise TypeError(f"not a wire message: {message!r}")
  body = message.body()
  body["t"] = message.kind
  return bytes(msgpack.packb(body, use_bin_type=True) or b"")


def decode(data: "bytes | bytearray | memoryview | str") -> Message:
  """The message in ``data``.

  Raises:
    WireError: ``data`` is not a message of this version.
  """
  if isinstance(data, str):
    raise WireError("a text frame: braxviewer sends binary messages.")
  try:
    body = msgpack.unpackb(bytes(data), raw=False, strict_map_key=False)
  except Exception as err:
    raise WireError(f"not msgpack ({type(err).__name__}).") from None
  kind = body.get("t") if isinstance(body, dict) else None
  cls = Message.registry.get(kind) if isinstance(kind, str) else None
  if cls is None:
    raise WireError("not a braxviewer message.")
  body.pop("t")
  try:
    message = cls.from_body(body)
  except WireError:
    raise
  except Exception as err:
    raise WireError(
      f"a bad {kind} message ({type(err).__name__}: {err})."
    ) from None
  version = getattr(message, "version", VERSION)
  if version != VERSION:
    raise WireError(
      f"wire version {version}, this braxviewer speaks {VERSION}: use the"
      " same braxviewer version for the server and the training."
    )
  return message


def redact(address: str) -> str:
  """``address`` with any ``token=`` value hidden: for lines that may end up
  in logs (warnings, reconnect notes)."""
  import re

  return re.sub(r"(token=)[^&#\s]*", r"\1<hidden>", str(address))


def address_of(address: str) -> Tuple[str, Optional[str]]:
  """``"host:port"``, ``"http://host:port/?token=..."`` (the URL a server
  prints) or ``"ws://..."`` -> the websocket URI of the training socket and
  the token (None: none given).

  Raises:
    ValueError: an address that names no host and port.
  """
  import urllib.parse

  text = str(address).strip()
  if "://" not in text:
    text = "http://" + text
  parts = urllib.parse.urlsplit(text)
  try:
    port = parts.port
  except ValueError:
    port = None
  if parts.scheme not in ("http", "https", "ws", "wss") or not parts.hostname:
    port = None
  if port is None:
    raise ValueError(
      f"braxviewer.connect: cannot read a server address from {address!r};"
      " give 'host:port' (e.g. '127.0.0.1:8000') or the URL the server"
      " printed."
    )
  token = urllib.parse.parse_qs(parts.query).get("token", [None])[0]
  scheme = "wss" if parts.scheme in ("https", "wss") else "ws"
  host = str(parts.hostname)
  if ":" in host:
    host = f"[{host}]"
  return f"{scheme}://{host}:{port}{PATH}", token
