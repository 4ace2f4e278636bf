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
import socket
import sys
import threading
import time
from typing import (
  Any,
  Callable,
  Deque,
  Dict,
  Iterable,
  Mapping,
  Optional,
  Tuple,
)
import urllib.parse
import warnings

from braxviewer.core import addresses
from braxviewer.core.frames import FrameChunk
from braxviewer.core.interrupts import InterruptWatch
from braxviewer.core.protocol import (
  Mode,
  StreamInfo,
)
from braxviewer.remote import token_file, wire
from braxviewer.remote.credentials import (
  default_run_name,
  process_of_job,
  resolve_run_key,
)
from braxviewer.remote.notices import (
  ServerLost,
  ServerRefused,
  ServerSlow,
  lost_message,
)
from braxviewer.remote.outbox import CHUNK, LinkStats, Outbox
from braxviewer.viewer.base import Viewer

_SYNC_POLL_S = 0.05
SYNC_SILENCE_S = 5.0  # a sync wait ends after this long without word
TOKEN_ENV = "BRAXVIEWER_TOKEN"
_PROGRESS_KEPT = 5_000  # reports sent again to a server after a reconnect
_CLOSE_FLUSH_S = 3.0  # close() waits this long for queued messages to leave


class RemoteViewer(Viewer):
  """The viewer-server backend (:class:`~braxviewer.viewer.base.Viewer`):
  what the trainer streams goes to a viewer server (made by
  :func:`connect`).

  Args:
    address: ``"host:port"`` or the URL the server printed (its token
      included).
    num_envs: envs to stream (None: the trainer chooses).
    run: the run's name on the page (default: script name and time).
      Processes of a multi-host job pass the same name to form one run.
    info_keys: the ``state.info`` entries to stream (see :class:`~braxviewer.viewer.base.Viewer`).
    token: the server's token (or in the URL, or ``$BRAXVIEWER_TOKEN``).
      On the server's machine, as the server's user, none is needed: it is
      read from the server's token file.
    run_key: who may join this run: processes that pass the same key (a
      multi-host job; see :func:`resolve_run_key` for the default: the
      ``BRAXVIEWER_RUN_KEY`` variable, or under ``jax.distributed`` a key
      process 0 shares with the others).
    max_queue_bytes: memory the outbox may hold while the socket is slow
      or the server away (oldest chunks dropped first, counted).
    max_queue_messages: messages the outbox may hold.
    retry_max_s: the longest wait between two tries to connect.
  """

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
      self._local = addresses.is_loopback(str(parts.hostname))
    except ValueError:
      self._local = False
    self.address = wire.redact(str(address))
    self._uri = uri
    super().__init__(num_envs, info_keys)
    if run is not None and (not isinstance(run, str) or not run.strip()):
      raise ValueError(f"run must be a non-empty name or None, got {run!r}.")
    self.run_name = run.strip() if run is not None else default_run_name()
    self._named = run is not None
    self._asked = self.run_name
    self._key = resolve_run_key(self.run_name, run_key)
    if max_queue_bytes < 1 << 16:
      raise ValueError(
        f"max_queue_bytes must be at least 65536, got {max_queue_bytes}."
      )
    self._retry_max_s = float(retry_max_s)
    self.stats = LinkStats()
    self._outbox = Outbox(max_queue_bytes, max_queue_messages)
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

  @stream_source.setter
  def stream_source(self, value: Optional[Tuple[int, int]]) -> None:
    raise AttributeError(
      "braxviewer: a viewer server's page chooses the stream source (its"
      " Process and Device controls, or server.set_stream_source(process,"
      " device)); a connected run follows it."
    )

  def wait_connected(self, timeout: float = 10.0) -> bool:
    """Wait until a server is connected; whether it is."""
    return self._connected.wait(timeout)

  def _on_init(self, env: Any) -> None:
    """Send the env's model (a brax or Playground env, MjModel, MJCF)."""
    from braxviewer.record import model_store

    files = model_store.capture(env)
    self._model, _ = self._send(
      wire.Model(files.mjb, files.xml, dict(files.assets), files.note or "")
    )

  def on_stream_start(self, info: StreamInfo) -> None:
    process, processes = process_of_job()
    self._start = wire.Start(info, process, processes)
    self._phase = None
    self._interrupted = False
    self._reports.clear()
    self._report_index = 0
    self._send(self._start)

  def on_chunk(self, chunk: FrameChunk) -> None:
    mode = self.mode
    if mode == Mode.OFF:
      self.stats.chunks_dropped += 1
      return
    sync = mode == Mode.SYNC and not self._interrupted
    _, queued = self._send(wire.Chunk(chunk, ack=sync))
    if queued and sync:
      self._wait_shown(chunk.source, int(chunk.seq))

  def on_progress(self, env_steps: int, metrics: Mapping[str, float]) -> None:
    clean = {}
    for key, value in metrics.items():
      try:
        clean[str(key)] = float(value)
      except (TypeError, ValueError):
        continue
    data, _ = self._send(
      wire.Progress(int(env_steps), clean, index=self._report_index)
    )
    self._report_index += 1
    self._reports.append(data)

  def on_trainer_mode(self, mode: Mode) -> None:
    self._trainer_mode = Mode.parse(mode).value
    self._send(wire.TrainerMode(self._trainer_mode))

  def on_phase(self, phase: str) -> None:
    self._phase = str(phase)
    self._send(wire.Phase(self._phase))

  def on_stream_end(self) -> None:
    self._send(wire.End())

  # -- lifecycle -----------------------------------------------------------------

  def _on_close(self) -> None:
    """Send what is queued (a few seconds at most), then disconnect."""
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

  def interrupt(self) -> None:
    """End sync waits (Ctrl-C); the trainer's thread gets back to Python."""
    self._interrupted = True
    with self._lock:
      self._lock.notify_all()

  # -- the outbox and sync -------------------------------------------------------

  def _send(self, message: wire.Message) -> Tuple[bytes, bool]:
    """Queue ``message`` by its class's drop priority; its bytes, and
    whether it was queued (a full outbox may drop it instead)."""
    data = wire.encode(message)
    queued = self._outbox.put(data, message.drop, self.stats)
    if queued:
      self._wakeup()
    return data, queued

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
    handlers: Dict[type, Callable[[Any], None]] = {
      wire.Control: self._on_control,
      wire.Shown: self._on_shown,
      wire.Holding: self._on_holding,
      wire.Rejected: self._on_rejected,
    }
    async for data in ws:
      message = wire.decode(data)
      handler = handlers.get(type(message))
      if handler is None:
        raise wire.WireError(f"a run does not take {message.kind} messages.")
      with self._lock:
        handler(message)
        self._lock.notify_all()

  # -- what the server says (under the lock) --------------------------------------

  def _on_control(self, message: wire.Control) -> None:
    if self._control is None or message.mode != self._control.mode:
      self._stalled = False  # a new mode: sync waits again
    self._control = message

  def _on_shown(self, message: wire.Shown) -> None:
    seen = self._shown.get(message.source, -1)
    self._shown[message.source] = max(seen, int(message.seq))
    self._heard = time.monotonic()
    self._stalled = False  # the server shows chunks again

  def _on_holding(self, message: wire.Holding) -> None:
    del message
    self._heard = time.monotonic()

  def _on_rejected(self, message: wire.Rejected) -> None:
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
    warnings.warn(
      lost_message(self.address, err, bool(self.stats.connects)),
      ServerLost,
      stacklevel=2,
    )


def connect(address: str = "127.0.0.1:8000", **options: Any) -> RemoteViewer:
  """A viewer on the viewer server at ``address`` (``python -m braxviewer
  serve``): pass it to ``ppo.train(viewer=...)``, ``sac.train``,
  ``braxviewer.wrap`` or push to it, like an in-process viewer.
  ``options``: :class:`RemoteViewer`'s keyword arguments (``num_envs``,
  ``run``, ``info_keys``, ``token``, ``run_key``, ``max_queue_bytes``)."""
  return RemoteViewer(address, **options)
