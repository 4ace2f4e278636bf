"""The viewer server's runs: who is connected, what each run streamed.

A :class:`Run` is one training run as the server knows it: its name, the
connections of its processes (:class:`Link`), its model and stream info, the
chunks kept for its timeline (a :class:`~braxviewer.timeline.RecentChunks`,
bounded), its phase, and its recording when the server records. Chunks are
numbered by the server per run and source, so a run that reconnects, or
whose streaming process changes, keeps one gap-free timeline.
:class:`RunBook` names runs (a name taken by a live run gets a suffix unless
the user chose it, which joins processes of one job) and lists them. No JAX,
no web.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from typing import Any, Dict, List, Optional, Tuple

import mujoco

from braxviewer.frames import FrameChunk
from braxviewer.protocol import StreamInfo
from braxviewer.record import Recorder
from braxviewer.record.model_store import ModelFiles
from braxviewer.remote import wire
from braxviewer.timeline import RecentChunks


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
  _seq: Dict[str, int] = dataclasses.field(
    default_factory=lambda: {"train": 0, "eval": 0}
  )

  @property
  def state(self) -> str:
    if self.ended:
      return "ended"
    if not self.links:
      return "disconnected"
    return "training" if self.info is not None else "waiting"

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

  def join(self, hello: wire.Hello, link: Link) -> Run:
    """The run ``hello`` belongs to, with ``link`` added: the run of that
    name when the user chose the name (another process of one job, or the
    same script back after a restart) or when it lost its connection;
    otherwise a new run, with a suffix when the name is taken."""
    with self.lock:
      name = hello.run.strip()[:80] or "run"
      run = self._runs.get(name)
      if run is not None:
        if (hello.named or not run.links) and not run.ended:
          run.links.append(link)
          return run
        name = self._free(name)
      run = self._runs[name] = Run(
        name, RecentChunks(self.history, self.max_bytes)
      )
      run.links.append(link)
      return run

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
