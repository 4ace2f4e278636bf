"""``braxviewer.connect``: a viewer that lives in another process.

:class:`RemoteViewer` is a :class:`~braxviewer.core.protocol.TrainingViewer` (the
PPO and SAC trainers, the wrapper and ``push`` take it) that sends what the
trainer tells it to a viewer server (``python -m braxviewer serve``) over
one websocket (:mod:`braxviewer.remote.wire`), and reads back the mode and
the streaming process/device the page asks for.

The server may be absent, go away, restart or stop answering: training
never waits for it beyond a bound. A background thread connects and
reconnects (backing off up to ``retry_max_s``); while there is no server
the mode is off (nothing leaves the device), progress reports wait in a
bounded outbox and chunks are dropped and counted; on reconnect the run
announces itself again (its name, model and stream) and streaming resumes.
A sync wait ends when the server has said nothing of the chunk (neither
shown nor holding) for :data:`SYNC_SILENCE_S`: training then goes on as in
live until the server shows chunks again. One warning says the server was
lost, no matter how often.

Credentials: the server's token (from ``token=``, the address, or on this
machine the server's token file), sent in a header, never printed; and the
run's key (:func:`resolve_run_key`), which lets only this run's own processes join
it. No JAX (the process index and a multi-host job's key are read through
JAX only if the trainer already imported it).
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import dataclasses
import os
import secrets
import socket
import sys
import threading
import time
from typing import Any, Deque, Dict, Iterable, Mapping, Optional, Tuple
import urllib.parse
import warnings

from braxviewer.core.frames import FrameChunk
from braxviewer.core.interrupts import InterruptWatch
from braxviewer.core.protocol import (
  Mode,
  StreamInfo,
  check_info_keys,
  check_num_envs,
)
from braxviewer.remote import token_file, wire
from braxviewer.viewer.push import Pushing
from braxviewer.web import access

_SYNC_POLL_S = 0.05
SYNC_SILENCE_S = 5.0  # a sync wait ends after this long without word
RUN_KEY_ENV = "BRAXVIEWER_RUN_KEY"
TOKEN_ENV = "BRAXVIEWER_TOKEN"
_JOB_KEY_WAIT_MS = 60_000  # how long process k waits for process 0's key
_PROGRESS_KEPT = 5_000  # reports sent again to a server after a reconnect
_CLOSE_FLUSH_S = 3.0  # close() waits this long for queued messages to leave


class ServerLost(RuntimeWarning):
  """The viewer server went away (said once per viewer); training goes on."""


class ServerSlow(RuntimeWarning):
  """The server asked for sync and did not show a chunk in time (said once
  per viewer); training goes on as in live until it shows chunks again."""


class ServerRefused(RuntimeWarning):
  """The server refused a message of this run (said once per kind)."""


@dataclasses.dataclass
class LinkStats:
  """What the connection did (for tests, benchmarks and the curious)."""

  connects: int = 0  # successful connections (1 + reconnects)
  chunks_sent: int = 0
  chunks_dropped: int = 0  # no server, or the outbox was full
  progress_dropped: int = 0  # reports, phases, modes: the outbox was full
  bytes_sent: int = 0
  queued_bytes: int = 0  # in the outbox now


# What a queued message is: what it may push out of a full outbox.
CHUNK, PROGRESS, CONTROL = "chunk", "progress", "control"


class _Outbox:
  """Messages waiting for the socket, bounded in bytes and in count.

  A chunk that does not fit pushes the oldest queued chunks out (live: the
  newest wins); a progress report (or a phase or trainer mode: the latest
  of those is sent again on reconnect anyway) pushes the oldest such
  message or chunk out. Control messages (the model, a stream's start and
  end: a few per training run) are never dropped: the server must hear
  them."""

  def __init__(self, max_bytes: int, max_messages: int):
    self.max_bytes = int(max_bytes)
    self.max_messages = int(max_messages)
    self._items: Deque[Tuple[bytes, str]] = collections.deque()
    self.nbytes = 0
    self._lock = threading.Lock()

  def put(self, data: bytes, kind: str, stats: LinkStats) -> bool:
    """Queue ``data`` (a message of ``kind``); False when it was dropped
    instead."""
    with self._lock:
      if kind != CONTROL:
        if len(data) > self.max_bytes:
          _count_drop(kind, stats)
          return False
        while self._items and (
          self.nbytes + len(data) > self.max_bytes
          or len(self._items) >= self.max_messages
        ):
          if not self._drop_oldest(kind, stats):
            _count_drop(kind, stats)
            return False
      self._items.append((data, kind))
      self.nbytes += len(data)
      stats.queued_bytes = self.nbytes
      return True

  def _drop_oldest(self, kind: str, stats: LinkStats) -> bool:
    """Drop the oldest message that may make room for one of ``kind``;
    False when none may go."""
    may_go = (CHUNK,) if kind == CHUNK else (CHUNK, PROGRESS)
    for i, (data, queued) in enumerate(self._items):
      if queued in may_go:
        del self._items[i]
        self.nbytes -= len(data)
        _count_drop(queued, stats)
        return True
    return False

  def take(self, stats: LinkStats) -> Optional[Tuple[bytes, str]]:
    """The oldest message and its kind (None: empty)."""
    with self._lock:
      if not self._items:
        return None
      data, kind = self._items.popleft()
      self.nbytes -= len(data)
      stats.queued_bytes = self.nbytes
      return data, kind

  def __len__(self) -> int:
    return len(self._items)


def _count_drop(kind: str, stats: LinkStats) -> None:
  if kind == CHUNK:
    stats.chunks_dropped += 1
  else:
    stats.progress_dropped += 1


def _default_run_name() -> str:
  script = os.path.basename(sys.argv[0] or "") or "python"
  script = os.path.splitext(script)[0] or "python"
  return f"{script}-{time.strftime('%H%M%S')}"


def resolve_run_key(run: str, given: Optional[str] = None) -> str:
  """The key that makes a run this run's own on the server: ``given``;
  else ``$BRAXVIEWER_RUN_KEY`` (a job script exports one for all its
  processes); else, under ``jax.distributed``, one that process 0 makes
  and the others read from JAX's coordinator (a bounded wait); else a new
  random key (this process alone)."""
  if given:
    return str(given)
  from_env = os.environ.get(RUN_KEY_ENV, "").strip()
  if from_env:
    return from_env
  return _job_key(run) or secrets.token_hex(16)


def _job_key(run: str) -> Optional[str]:
  """Under ``jax.distributed``: process 0's random key for ``run``, shared
  through JAX's coordinator key-value store; None elsewhere."""
  jax = sys.modules.get("jax")
  if jax is None:
    return None
  try:
    if jax.process_count() <= 1:
      return None
    # the coordinator's key-value store, loaded by jax.distributed
    distributed = sys.modules.get("jax._src.distributed")
    state = getattr(distributed, "global_state", None)
    client = getattr(state, "client", None)
    first = jax.process_index() == 0
  except Exception:
    return None
  if client is None:
    return None
  name = f"braxviewer/run_key/{run}"
  try:
    if first:
      key = secrets.token_hex(16)
      try:
        client.key_value_set(name, key)
      except Exception:  # set before (a second viewer of that name)
        key = str(client.blocking_key_value_get(name, 1000))
      return key
    return str(client.blocking_key_value_get(name, _JOB_KEY_WAIT_MS))
  except Exception as err:
    warnings.warn(
      f"braxviewer: process {jax.process_index()} got no run key for"
      f" {run!r} from process 0 ({type(err).__name__}); did every process"
      " call braxviewer.connect with the same run=? This process streams"
      " as a run of its own.",
      ServerRefused,
      stacklevel=3,
    )
    return None


def _process() -> Tuple[int, int]:
  """(process index, process count) when the trainer's JAX knows them."""
  jax = sys.modules.get("jax")
  if jax is None:
    return 0, 1
  try:
    return int(jax.process_index()), int(jax.process_count())
  except Exception:
    return 0, 1


class RemoteViewer(Pushing):
  """A viewer on a viewer server; see :func:`connect`."""

  def __init__(
    self,
    address: str,
    *,
    num_envs: Optional[int] = None,
    run: Optional[str] = None,
    info_keys: Optional[Iterable[str]] = None,
    token: Optional[str] = None,
    run_key: Optional[str] = None,
    max_queue_bytes: int = 64 << 20,
    max_queue_messages: int = 10_000,
    retry_max_s: float = 5.0,
  ):
    uri, url_token = wire.address_of(address)
    self._token = (
      token or url_token or os.environ.get(TOKEN_ENV, "").strip() or None
    )
    parts = urllib.parse.urlsplit(uri)
    self._port = int(parts.port or 0)
    try:  # on this machine: the server's token file, read at each connect
      self._local = access.is_loopback(str(parts.hostname))
    except ValueError:
      self._local = False
    self.address = wire.redact(str(address))
    self._uri = uri
    self.num_envs = check_num_envs(num_envs)
    self.info_keys: Optional[Tuple[str, ...]] = check_info_keys(info_keys)
    if run is not None and (not isinstance(run, str) or not run.strip()):
      raise ValueError(f"run must be a non-empty name or None, got {run!r}.")
    self.run_name = run.strip() if run is not None else _default_run_name()
    self._named = run is not None
    self._asked = self.run_name
    self._key = resolve_run_key(self.run_name, run_key)
    if max_queue_bytes < 1 << 16:
      raise ValueError(
        f"max_queue_bytes must be at least 65536, got {max_queue_bytes}."
      )
    self._retry_max_s = float(retry_max_s)
    self.stats = LinkStats()
    self._outbox = _Outbox(max_queue_bytes, max_queue_messages)
    self._lock = threading.Condition()
    self._control: Optional[wire.Control] = None  # None: no server
    self._shown: dict = {"train": -1, "eval": -1}
    self._heard = 0.0  # when the server last spoke of a sync chunk
    self._stalled = False  # a sync wait timed out; no waiting until shown
    self._rejected: Dict[str, str] = {}  # kind -> why, said once each
    self._said: set = set()  # warnings given (each once)
    self._model: Optional[bytes] = None
    self._start: Optional[wire.Start] = None
    self._phase: Optional[str] = None
    self._trainer_mode: Optional[str] = None
    # this stream's recent progress reports: a server that restarted gets
    # them again, so its curves are whole (it keeps each index once)
    self._reports: Deque[bytes] = collections.deque(maxlen=_PROGRESS_KEPT)
    self._report_index = 0
    self._closed = False
    self._interrupted = False
    self._warned = False
    self._loop: Optional[asyncio.AbstractEventLoop] = None
    self._wake: Optional[asyncio.Event] = None
    self._connected = threading.Event()
    self._thread = threading.Thread(
      target=self._run_loop, name="braxviewer-connect", daemon=True
    )
    self._thread.start()
    # Ctrl-C ends a sync wait at once (the trainer's thread is in a callback)
    self._interrupts = InterruptWatch(self.interrupt)
    self._interrupts.start()
    atexit.register(self.close)

  # -- TrainingViewer ------------------------------------------------------------

  def requested_envs(self) -> Optional[int]:
    return self.num_envs

  @property
  def connected(self) -> bool:
    """A server is connected now."""
    return self._connected.is_set()

  @property
  def mode(self) -> Mode:
    """The mode the server's page asks for; off while there is no server."""
    control = self._control
    if control is None or self._closed or not self.connected:
      return Mode.OFF
    try:
      return Mode.parse(control.mode)
    except ValueError:
      return Mode.OFF

  @property
  def stream_source(self) -> Tuple[int, int]:
    """(process, local device) the page wants frames from."""
    control = self._control
    return (0, 0) if control is None else (control.process, control.device)

  def wait_connected(self, timeout: float = 10.0) -> bool:
    """Wait until a server is connected; whether it is."""
    return self._connected.wait(timeout)

  def init(self, env: Any) -> "RemoteViewer":
    """Send the env's model (a brax or Playground env, MjModel, MJCF)."""
    from braxviewer.record import model_store

    files = model_store.capture(env)
    self._model = wire.encode(
      wire.Model(files.mjb, files.xml, dict(files.assets), files.note or "")
    )
    self.pushes.note_env(env)
    self._send(self._model)
    return self

  def run(self) -> "RemoteViewer":
    """Nothing to start (the connection runs already); the original API."""
    return self

  def on_stream_start(self, info: StreamInfo) -> None:
    process, processes = _process()
    self._start = wire.Start(info, process, processes)
    self._phase = None
    self._interrupted = False
    self._reports.clear()
    self._report_index = 0
    self._send(wire.encode(self._start))

  def on_chunk(self, chunk: FrameChunk) -> None:
    mode = self.mode
    if mode == Mode.OFF:
      self.stats.chunks_dropped += 1
      return
    sync = mode == Mode.SYNC and not self._interrupted
    data = wire.encode(wire.Chunk(chunk, ack=sync))
    if not self._outbox.put(data, CHUNK, self.stats):
      return
    self._wakeup()
    if sync:
      self._wait_shown(chunk.source, int(chunk.seq))

  def on_progress(self, env_steps: int, metrics: Mapping[str, float]) -> None:
    clean = {}
    for key, value in metrics.items():
      try:
        clean[str(key)] = float(value)
      except (TypeError, ValueError):
        continue
    data = wire.encode(
      wire.Progress(int(env_steps), clean, index=self._report_index)
    )
    self._report_index += 1
    self._reports.append(data)
    self._send(data, PROGRESS)

  def on_trainer_mode(self, mode: Mode) -> None:
    self._trainer_mode = Mode.parse(mode).value
    self._send(wire.encode(wire.TrainerMode(self._trainer_mode)), PROGRESS)

  def on_phase(self, phase: str) -> None:
    self._phase = str(phase)
    self._send(wire.encode(wire.Phase(self._phase)), PROGRESS)

  def on_stream_end(self) -> None:
    self._send(wire.encode(wire.End()))

  # -- lifecycle -----------------------------------------------------------------

  def close(self) -> None:
    """Send what is queued (a few seconds at most), then disconnect."""
    if self._closed:
      return
    self.pushes.close()
    deadline = time.monotonic() + _CLOSE_FLUSH_S
    while len(self._outbox) and self.connected and time.monotonic() < deadline:
      time.sleep(0.02)
    self._closed = True
    atexit.unregister(self.close)
    self._interrupts.stop()
    with self._lock:
      self._lock.notify_all()
    self._wakeup()
    self._thread.join(5.0)

  def stop(self) -> None:
    self.close()

  def __enter__(self) -> "RemoteViewer":
    return self

  def __exit__(self, *exc: Any) -> None:
    self.close()

  def interrupt(self) -> None:
    """End sync waits (Ctrl-C); the trainer's thread gets back to Python."""
    self._interrupted = True
    with self._lock:
      self._lock.notify_all()

  # -- the outbox and sync -------------------------------------------------------

  def _send(self, data: bytes, kind: str = CONTROL) -> None:
    if self._outbox.put(data, kind, self.stats):
      self._wakeup()

  def _wakeup(self) -> None:
    loop, wake = self._loop, self._wake
    if loop is not None and wake is not None and not loop.is_closed():
      try:
        loop.call_soon_threadsafe(wake.set)
      except RuntimeError:  # the loop just closed
        pass

  def _wait_shown(self, source: str, seq: int) -> None:
    """Wait until the server showed the chunk, while it says it is showing
    it; after :data:`SYNC_SILENCE_S` of silence, go on (one warning) and
    wait no more until the server shows a chunk again."""
    with self._lock:
      if self._stalled:
        return
      self._heard = time.monotonic()
      while not (
        self._shown.get(source, -1) >= seq
        or self.mode != Mode.SYNC
        or self._interrupted
        or self._closed
      ):
        if time.monotonic() - self._heard > SYNC_SILENCE_S:
          self._stalled = True
          break
        self._lock.wait(_SYNC_POLL_S)
    if self._stalled:
      self._warn_once(
        "slow",
        f"braxviewer: the viewer server at {self.address} asked for sync"
        f" but said nothing of chunk {seq} for {SYNC_SILENCE_S:.0f} s;"
        " training goes on without waiting (as in live) until the server"
        " shows chunks again.",
        ServerSlow,
      )

  # -- the connection (its own thread and event loop) ----------------------------

  def _run_loop(self) -> None:
    loop = asyncio.new_event_loop()
    try:
      loop.run_until_complete(self._main(loop))
    finally:
      loop.close()

  def _credentials(self) -> Dict[str, str]:
    """The server's token as a header (never in the URL: URLs get logged);
    on this machine read anew at each try (a restarted server has a new
    one)."""
    token = self._token
    if not token and self._local:
      token = token_file.read(self._port)
    return {"Authorization": f"Bearer {token}"} if token else {}

  async def _main(self, loop: asyncio.AbstractEventLoop) -> None:
    from websockets.asyncio.client import connect as ws_connect

    self._wake = asyncio.Event()
    self._loop = loop
    delay = 0.25
    while not self._closed:
      try:
        async with ws_connect(
          self._uri,
          additional_headers=self._credentials(),
          max_size=wire.MAX_MESSAGE_BYTES,
          open_timeout=5.0,
          ping_interval=5.0,
          ping_timeout=10.0,
          compression=None,
        ) as ws:
          await self._session(ws)
          delay = 0.25
      except Exception as err:
        self._lost(err)
      if not self._closed:
        await self._sleep(delay)
        delay = min(self._retry_max_s, delay * 2)

  async def _sleep(self, seconds: float) -> None:
    assert self._wake is not None
    self._wake.clear()
    try:
      await asyncio.wait_for(self._wake.wait(), seconds)
    except asyncio.TimeoutError:
      pass

  async def _session(self, ws: Any) -> None:
    hello = wire.Hello(
      self.run_name, self._named, socket.gethostname(), os.getpid(), self._key
    )
    await ws.send(wire.encode(hello))
    welcome = wire.decode(await asyncio.wait_for(ws.recv(), 10.0))
    if not isinstance(welcome, wire.Welcome):
      raise wire.WireError("the server did not welcome the run.")
    if welcome.taken and self._named:
      print(
        f"braxviewer: the viewer server has another run named"
        f" {self.run_name!r} (not this run's key); this run is"
        f" {welcome.run!r}. Processes of one job share a key: see"
        " braxviewer.connect(run_key=...).",
        file=sys.stderr,
        flush=True,
      )
    self.run_name, self._named = welcome.run, True  # keep it on reconnects
    for data in self._state():
      await ws.send(data)
    self.stats.connects += 1
    if self.stats.connects > 1:
      print(
        f"braxviewer: reconnected to the viewer server at {self.address};"
        " streaming resumes.",
        file=sys.stderr,
        flush=True,
      )
    self._connected.set()
    receiver = asyncio.ensure_future(self._receive(ws))
    try:
      while not self._closed and not receiver.done():
        assert self._wake is not None
        self._wake.clear()
        item = self._outbox.take(self.stats)
        if item is None:
          waiter = asyncio.ensure_future(self._wake.wait())
          await asyncio.wait(
            [receiver, waiter],
            timeout=0.5,
            return_when=asyncio.FIRST_COMPLETED,
          )
          waiter.cancel()
          continue
        data, kind = item
        await ws.send(data)
        self.stats.bytes_sent += len(data)
        self.stats.chunks_sent += int(kind == CHUNK)
      if receiver.done() and receiver.exception() is not None:
        raise receiver.exception()  # type: ignore[misc]
    finally:
      receiver.cancel()
      self._disconnected()
    if not self._closed:
      raise ConnectionError("the server closed the connection.")

  def _state(self) -> list:
    """What a (re)connected server must hear first: the model, the stream,
    its phase and the trainer's mode."""
    out = []
    if self._model is not None:
      out.append(self._model)
    if self._start is not None:
      again = dataclasses.replace(self._start, again=True)
      out.append(wire.encode(again))
    if self._phase is not None:
      out.append(wire.encode(wire.Phase(self._phase)))
    if self._trainer_mode is not None:
      out.append(wire.encode(wire.TrainerMode(self._trainer_mode)))
    out.extend(list(self._reports))  # the server keeps the ones it lacks
    return out

  async def _receive(self, ws: Any) -> None:
    async for data in ws:
      message = wire.decode(data)
      with self._lock:
        if isinstance(message, wire.Control):
          if self._control is None or message.mode != self._control.mode:
            self._stalled = False  # a new mode: sync waits again
          self._control = message
        elif isinstance(message, wire.Shown):
          seen = self._shown.get(message.source, -1)
          self._shown[message.source] = max(seen, int(message.seq))
          self._heard = time.monotonic()
          self._stalled = False  # the server shows chunks again
        elif isinstance(message, wire.Holding):
          self._heard = time.monotonic()
        elif isinstance(message, wire.Rejected):
          self._rejected_by_server(message)
        self._lock.notify_all()

  def _rejected_by_server(self, message: wire.Rejected) -> None:
    what = str(message.what)[:40]
    if what in self._rejected:
      return
    self._rejected[what] = str(message.why)[:400]
    self._warn_once(
      f"rejected:{what}",
      f"braxviewer: the viewer server refused this run's {what} message:"
      f" {' '.join(str(message.why).split())[:400]} Training goes on.",
      ServerRefused,
    )

  def _warn_once(self, key: str, message: str, category: type) -> None:
    if key in self._said:
      return
    self._said.add(key)
    warnings.warn(message, category, stacklevel=3)

  def _disconnected(self) -> None:
    self._connected.clear()
    with self._lock:
      self._control = None
      self._lock.notify_all()

  def _lost(self, err: BaseException) -> None:
    if self._warned or self._closed:
      return
    self._warned = True
    why = " ".join(_why(err).split()) or type(err).__name__
    was = "lost" if self.stats.connects else "cannot reach"
    warnings.warn(
      f"braxviewer: {was} the viewer server at {self.address}"
      f" ({wire.redact(why)[:400]}). Training goes on; the viewer retries in"
      " the background and the stream resumes when the server is back.",
      ServerLost,
      stacklevel=2,
    )


def _why(err: BaseException) -> str:
  """What went wrong, with the server's own words for a refused handshake
  (e.g. a missing token and where to find it)."""
  response = getattr(err, "response", None)
  body = getattr(response, "body", None)
  if isinstance(body, (bytes, bytearray)) and body:
    status = getattr(response, "status_code", "")
    return f"HTTP {status}: {bytes(body[:600]).decode('utf-8', 'replace')}"
  return str(err)


def connect(
  address: str = "127.0.0.1:8000",
  *,
  num_envs: Optional[int] = None,
  run: Optional[str] = None,
  info_keys: Optional[Iterable[str]] = None,
  token: Optional[str] = None,
  run_key: Optional[str] = None,
  max_queue_bytes: int = 64 << 20,
) -> RemoteViewer:
  """A viewer on the viewer server at ``address`` (``python -m braxviewer
  serve``): pass it to ``ppo.train(viewer=...)``, ``sac.train``,
  ``braxviewer.wrap`` or push to it, like an in-process viewer.

  Args:
    address: ``"host:port"`` or the URL the server printed (its token
      included).
    num_envs: envs to stream (None: the trainer chooses).
    run: the run's name on the page (default: script name and time).
      Processes of a multi-host job pass the same name to form one run.
    info_keys: the ``state.info`` entries to stream (see ``WebViewerBase``).
    token: the server's token (or in the URL, or ``$BRAXVIEWER_TOKEN``).
      On the server's machine, as the server's user, none is needed: it is
      read from the server's token file.
    run_key: who may join this run: processes that pass the same key (a
      multi-host job; see :func:`resolve_run_key` for the default: the
      ``BRAXVIEWER_RUN_KEY`` variable, or under ``jax.distributed`` a key
      process 0 shares with the others).
    max_queue_bytes: memory the outbox may hold while the socket is slow
      or the server away (oldest chunks dropped first, counted).
  """
  return RemoteViewer(
    address,
    num_envs=num_envs,
    run=run,
    info_keys=info_keys,
    token=token,
    run_key=run_key,
    max_queue_bytes=max_queue_bytes,
  )
