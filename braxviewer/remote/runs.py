"""The viewer server's runs: who is connected, what each run streamed.

A :class:`Run` is one training run as the server knows it: its name, the
connections of its processes (:class:`Link`), its model and stream info, the
chunks kept for its timeline (a :class:`~braxviewer.core.timeline.RecentChunks`,
bounded), its phase, and its recording when the server records. Chunks are
numbered by the server per run and source, so a run that reconnects, or
whose streaming process changes, keeps one gap-free timeline.
:class:`RunBook` names runs and lists them. A run belongs to the
connections that hold its key (the first connection's
:attr:`~braxviewer.remote.wire.Hello.key`): the processes of one job, the
same viewer reconnecting. A connection with another key never joins it: it
gets a run of its own, the name with a suffix. Runs with no connection left
expire after a time to live (their recordings stay on disk). No JAX, no
web.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import secrets
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

import mujoco

from braxviewer.core.frames import FrameChunk
from braxviewer.core.protocol import StreamInfo
from braxviewer.core.run_state import run_state
from braxviewer.core.timeline import RecentChunks
from braxviewer.record import Recorder
from braxviewer.record.model_store import ModelFiles
from braxviewer.remote import wire


class Link:
  """One connection from a process of a run: sends from any thread.

  Args:
    connection: the websocket (its ``send`` is a coroutine).
    loop: the event loop it lives on.
    where: the process's host and pid, as the page shows them.
  """

  def __init__(
    self, connection: Any, loop: asyncio.AbstractEventLoop, where: str
  ):
    self._connection = connection
    self._loop = loop
    self.where = str(where)
    self.process: int = 0
    self.closed = False

  def send(self, message: wire.Message) -> None:
    """Send without waiting (dropped once the connection closed)."""
    if self.closed:
      return
    data = wire.encode(message)
    try:
      asyncio.run_coroutine_threadsafe(self._connection.send(data), self._loop)
    except RuntimeError:  # the loop is closed: the server stops
      self.closed = True


@dataclasses.dataclass
class Run:
  """A training run on the server."""

  name: str
  store: RecentChunks
  links: List[Link] = dataclasses.field(default_factory=list)
  files: Optional[ModelFiles] = None
  model: Optional[mujoco.MjModel] = None
  info: Optional[StreamInfo] = None
  processes: int = 1
  source: Tuple[int, int] = (0, 0)  # (process, device) the page chose
  phase: Optional[str] = None
  trainer_mode: Optional[str] = None
  ended: bool = False
  env_steps: int = 0
  recorder: Optional[Recorder] = None
  sent: Optional[wire.Control] = None  # the last control sent
  reports: int = 0  # progress reports kept (the next index wanted)
  key: bytes = b""  # digest of the run's key: who may join it
  left_at: Optional[float] = None  # monotonic time its last link left
  pending: Optional[Tuple[str, int]] = None  # a sync chunk being shown
  _seq: Dict[str, int] = dataclasses.field(
    default_factory=lambda: {"train": 0, "eval": 0}
  )

  @property
  def state(self) -> str:
    """One of :data:`braxviewer.core.run_state.STATES`, as every page
    names it."""
    return run_state(
      self.phase or "",
      started=self.info is not None,
      ended=self.ended,
      connected=bool(self.links),
    )

  def number(self, chunk: FrameChunk) -> FrameChunk:
    """``chunk`` with the run's own next sequence number of its source."""
    seq = self._seq[chunk.source]
    self._seq[chunk.source] = seq + 1
    return dataclasses.replace(chunk, seq=seq)

  def connected(self) -> Tuple[int, ...]:
    return tuple(sorted({link.process for link in self.links}))

  def where(self) -> str:
    first = min(self.links, key=lambda link: link.process, default=None)
    return first.where if first is not None else ""


def _digest(key: str) -> bytes:
  if not key:  # no key: nobody can join this run
    return secrets.token_bytes(32)
  return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


class RunBook:
  """The runs of a server, by name, in order of arrival.

  Args:
    history: chunks per source kept for each run's timeline.
    max_bytes: bound on the bytes kept per run.
  """

  def __init__(self, history: int = 64, max_bytes: int = 64 << 20):
    self.history = int(history)
    self.max_bytes = int(max_bytes)
    self.lock = threading.RLock()
    self._runs: Dict[str, Run] = {}

  def join(self, hello: wire.Hello, link: Link) -> Tuple[Run, bool]:
    """The run ``hello`` belongs to, with ``link`` added, and whether the
    name asked for belongs to another run (then this is a new run, the
    name with a suffix). A connection joins the run of its name only
    with that run's key (another process of one job, the same viewer
    reconnecting); a run's first connection sets its key."""
    key = _digest(hello.key)
    with self.lock:
      name = hello.run.strip()[:80] or "run"
      run = self._runs.get(name)
      taken = False
      if run is not None:
        if hello.key and hmac.compare_digest(run.key, key):
          run.links.append(link)
          run.left_at = None
          return run, False
        taken = True
        name = self._free(name)
      run = self._runs[name] = Run(
        name, RecentChunks(self.history, self.max_bytes), key=key
      )
      run.links.append(link)
      return run, taken

  def _free(self, name: str) -> str:
    k = 2
    while f"{name}-{k}" in self._runs:
      k += 1
    return f"{name}-{k}"

  def leave(self, run: Run, link: Link) -> None:
    with self.lock:
      link.closed = True
      if link in run.links:
        run.links.remove(link)
      if not run.links:
        run.left_at = time.monotonic()

  def expired(self, ttl_s: float) -> List[Run]:
    """The runs with no connection for more than ``ttl_s`` seconds, taken
    off the book (their recordings are the caller's to close)."""
    now = time.monotonic()
    with self.lock:
      gone = [
        run
        for run in self._runs.values()
        if not run.links
        and run.left_at is not None
        and now - run.left_at > ttl_s
      ]
      for run in gone:
        del self._runs[run.name]
      return gone

  def forget(self, name: str) -> Optional[Run]:
    """Drop a run that ended or lost its connection; returns it (None: no
    such run, or it still trains)."""
    with self.lock:
      run = self._runs.get(name)
      if run is None or (run.links and not run.ended):
        return None
      return self._runs.pop(name)

  def get(self, name: str) -> Optional[Run]:
    with self.lock:
      return self._runs.get(name)

  def all(self) -> List[Run]:
    with self.lock:
      return list(self._runs.values())
