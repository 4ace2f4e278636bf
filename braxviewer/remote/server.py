"""``python -m braxviewer serve``: a viewer server that outlives training runs.

:class:`ViewerServer` is the web viewer (the same page, on the same port)
plus a websocket path (:data:`braxviewer.remote.wire.PATH`) that training
runs connect to with ``braxviewer.connect``. Each connection speaks for one
process of one :class:`~braxviewer.remote.runs.Run`; its messages are
applied in a thread of its own (a sync wait never holds the socket loop or
another run). The page shows one run's envs at a time (the Run dropdown)
and overlays every run's training curves; the runs not shown keep
streaming live (never sync) into their own timelines, so switching shows
their recent chunks at once. A run that
ended stays until forgotten. With ``record_dir`` every run is recorded
there, one recording per run. The server tells each run, several times a
second if it changes, the mode and the process/device to stream from
(:class:`~braxviewer.remote.wire.Control`).

Trust: the training socket needs the server's secret, also on loopback
(written for this user only by :mod:`~braxviewer.remote.token_file`); a
connection joins a run only with the run's key; and every message is
checked by :mod:`~braxviewer.remote.trust` before it is applied (a refused
one is dropped, said once per client and kind, and told to the run). Runs
with no connection left expire after ``run_ttl_s``. No JAX.
"""

from __future__ import annotations

import asyncio
import os
import queue
import re
import threading
import time
from typing import Any, Dict, Mapping, Optional, Set
import warnings

from braxviewer.core.protocol import Mode
from braxviewer.record import Recorder
from braxviewer.remote import token_file, trust, wire
from braxviewer.remote.runs import Link, Run, RunBook
from braxviewer.web import access
from braxviewer.web.errors import ViewerWarning
from braxviewer.web.runs_panel import RunRow, RunsPanel
from braxviewer.web.server import Route, Token
from braxviewer.web.viewer import WebViewerBase

_TICK_S = 0.2  # how often runs are told what to stream, the panel refreshed
_HOLDING_S = 1.0  # how often a run waiting on a sync chunk hears "holding"
_HELLO_TIMEOUT_S = 10.0
_WARNED_CLIENTS = 20  # clients warned about by name; then only counted
DEFAULT_RUN_TTL_S = 24 * 3600.0


def _dir_name(name: str) -> str:
  return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "run"


class ViewerServer(WebViewerBase):
  """The page, serving any number of training runs that connect to it.

  Args:
    host: interface to serve on (the page and the training socket).
    port: TCP port (0: any free port).
    record_dir: record every run to ``record_dir/<run name>`` (None: no
      recording).
    history: chunks per source kept for each run's timeline.
    token: the server's secret. The training socket always needs it (on
      this machine ``connect`` reads it from the server's token file);
      the page needs it beyond loopback (``"auto"``, a new secret) or
      whenever it is given as a string. False or None: a new secret for
      the training socket, and an open page (a warning beyond loopback).
    port_fallback: take the next free port when ``port`` is busy.
    mode: the streaming mode the page starts in for the run shown.
    layout: ``"grid"``, ``"overlay"`` or ``"auto"`` (see ``WebViewerBase``).
    title: the page's panel title.
    run_ttl_s: a run with no connection left is forgotten after this many
      seconds (its recording stays on disk); None: kept until *Forget run*.
  """

  def __init__(
    self,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    record_dir: Optional[str] = None,
    history: int = 64,
    token: Token = "auto",
    port_fallback: bool = False,
    mode: "Mode | str" = Mode.LIVE,
    layout: str = "auto",
    title: str = "braxviewer server",
    run_ttl_s: Optional[float] = DEFAULT_RUN_TTL_S,
  ):
    if isinstance(token, str) and token not in ("", "auto"):
      secret = _check_token(token)
    else:
      secret = access.new_token()
      if token == "auto" and not access.is_loopback(host):
        token = secret  # one secret for the page and the runs
    if run_ttl_s is not None and not float(run_ttl_s) > 0:
      raise ValueError(
        f"braxviewer: run_ttl_s must be a positive number of seconds or"
        f" None, got {run_ttl_s!r}."
      )
    super().__init__(
      host,
      port,
      mode=mode,
      port_fallback=port_fallback,
      history=history,
      title=title,
      token=token,
      layout=layout,
    )
    self.record_dir = None if record_dir is None else os.fspath(record_dir)
    if self.record_dir is not None:
      os.makedirs(self.record_dir, exist_ok=True)
    self.runs = RunBook(history=history)
    self.run_ttl_s = None if run_ttl_s is None else float(run_ttl_s)
    self._secret = secret
    self.token_file: Optional[str] = None  # where this user's runs read it
    self.refused: Dict[str, int] = {}  # messages refused, by kind
    self._warned_clients: Set[str] = set()
    self._last_holding = 0.0
    self._shown: Optional[Run] = None
    self._auto: Optional[str] = None  # the run shown for being first
    self._show_lock = threading.RLock()
    self._panel: Optional[RunsPanel] = None
    self._panel_lock = threading.Lock()
    self._ticker: Optional[threading.Thread] = None
    self._stop = threading.Event()

  # -- lifecycle -------------------------------------------------------------------

  def run(self) -> "ViewerServer":
    """Serve the page and the training socket; print the address."""
    if self.page is None:
      super().run()
      assert self.page is not None
      self._panel = self.page.add_runs_panel(
        self.show_run, self.set_stream_source, self.forget_run
      )
      self._ticker = threading.Thread(
        target=self._tick, name="braxviewer-runs", daemon=True
      )
      self._ticker.start()
      try:
        self.token_file = token_file.write(self.port, self._secret)
      except OSError as err:
        warnings.warn(
          f"braxviewer: cannot write the server's token file ({err}); runs"
          " on this machine must be given the token (connect(token=...)).",
          ViewerWarning,
          stacklevel=2,
        )
      print(
        f"braxviewer: training runs connect with braxviewer.connect("
        f"{self._connect_address()!r}); {self._token_note()}",
        flush=True,
      )
    return self

  def _token_note(self) -> str:
    where = self.token_file or token_file.path_for(self.port)
    return (
      f"on this machine it reads the server's token from {where} (yours"
      " only); from other machines pass token=THE_TOKEN (that file's"
      " content)."
    )

  @property
  def secret(self) -> str:
    """The token runs connect with (keep it to yourself)."""
    return self._secret

  def close(self) -> None:
    """Stop serving; every run's recording is closed (training runs keep
    going and reconnect when a server is back)."""
    self._stop.set()
    if self._ticker is not None:
      self._ticker.join(2.0)
    for run in self.runs.all():
      if run.recorder is not None:
        run.recorder.close()
    if self.token_file is not None:
      token_file.remove(self.port, self._secret)
      self.token_file = None
    super().close()

  def _connect_address(self) -> str:
    url = wire.redact(self.url or "").split("/?", 1)[0]
    return url.split("://", 1)[-1].rstrip("/")

  def _routes(self) -> Optional[Mapping[str, Route]]:
    hint = (
      "On the server's machine braxviewer.connect reads it from"
      f" {token_file.path_for(self.port) if self.port else token_file.folder()}"
      " (the server's user only); elsewhere pass"
      " braxviewer.connect(..., token=...)."
    )
    private = access.Private(self._secret, hint)
    return {wire.PATH: Route(self._ingest, private=private)}

  # -- what the page shows ---------------------------------------------------------

  @property
  def shown_run(self) -> Optional[str]:
    """The name of the run the page shows (None: none yet)."""
    run = self._shown
    return None if run is None else run.name

  def show_run(self, name: str) -> None:
    """Show run ``name``'s envs and timeline (its model, its stream)."""
    with self._show_lock:
      run = self.runs.get(name)
      if run is None:
        raise ValueError(f"braxviewer: no run named {name!r} on this server.")
      if run is self._shown:
        return
      self._shown = run
      player = self.playback.player
      player.ready = False  # hold playback until the envs are rebuilt
      player.use_store(run.store)
      # the envs to draw before the run's stream says: within the budget
      self._streamed_envs = (
        run.info.num_envs
        if run.info is not None
        else max(1, min(16, trust.MAX_DRAWN_BODIES // run.model.nbody))
        if run.model is not None
        else 0
      )
      if run.model is not None:
        self.init(run.model)
      if run.info is not None:
        self.on_stream_start(run.info)
      # after the rebuild the two calls above queued on the viewer thread
      self.playback.call_soon(lambda: setattr(player, "ready", True))
      if run.phase is not None:
        self.on_phase(run.phase)
      if run.trainer_mode is not None:
        self.on_trainer_mode(Mode.parse(run.trainer_mode))
      if run.ended:
        self.on_stream_end()
    self._send_controls()
    self._refresh_panel()

  def set_stream_source(self, process: int, device: int = 0) -> None:
    """Stream the shown run from ``process`` (multi-host) and its local
    ``device``; the trainer switches without recompiling."""
    run = self._shown
    if run is None:
      return
    process, device = int(process), int(device)
    if not 0 <= process < max(run.processes, 1) or not 0 <= device < 64:
      raise ValueError(
        f"braxviewer: run {run.name!r} has processes 0..{run.processes - 1}"
        f" and devices 0..63; got process {process}, device {device}."
      )
    run.source = (process, device)
    self._send_controls()

  def forget_run(self, name: str) -> None:
    """Take an ended (or disconnected) run off the page."""
    run = self.runs.forget(name)
    if run is not None:
      self._drop(run)

  def _drop(self, run: Run) -> None:
    """What is left of a run taken off the book: its curves, its
    recording (closed, kept on disk), the page if it showed it."""
    if self.page is not None:
      self.page.forget_progress(run.name)
    if run.recorder is not None:
      run.recorder.close()
    if run is self._shown:
      self._shown = None
      rest = self.runs.all()
      if rest:
        self.show_run(rest[-1].name)
      else:
        self._auto = None  # the next run to connect is shown
    self._refresh_panel()

  # -- the training socket (on the server's event loop) ----------------------------

  async def _ingest(self, connection: Any) -> None:
    try:
      hello = wire.decode(
        await asyncio.wait_for(connection.recv(), _HELLO_TIMEOUT_S)
      )
      if not isinstance(hello, wire.Hello):
        raise wire.WireError("the first message must be a hello.")
      hello = trust.check_hello(hello)
    except Exception as err:
      self._warn_wire(err)
      await connection.close(1008, str(err)[:120])
      return
    link = Link(
      connection,
      asyncio.get_running_loop(),
      f"{hello.host}, pid {hello.pid}",
    )
    run, taken = self.runs.join(hello, link)
    if taken and hello.named:
      self._warn_client(
        link,
        "name",
        f"asked for run {hello.run!r}, which belongs to another run (its"
        f" key differs); it streams as {run.name!r}.",
      )
    if run.recorder is None and self.record_dir is not None:
      run.recorder = self._recorder_for(run.name)
    await connection.send(wire.encode(wire.Welcome(run.name, taken)))
    inbox: "queue.Queue[Optional[wire.Message]]" = queue.Queue(maxsize=64)
    worker = threading.Thread(
      target=self._work,
      args=(run, link, inbox),
      name=f"braxviewer-run-{run.name}",
      daemon=True,
    )
    worker.start()
    with self.runs.lock:  # the first run to connect is shown
      first = self._shown is None and self._auto is None
      if first:
        self._auto = run.name
    if first:
      threading.Thread(
        target=self.show_run, args=(run.name,), daemon=True
      ).start()
    try:
      async for data in connection:
        message = wire.decode(data)
        await asyncio.to_thread(inbox.put, message)
    except Exception as err:
      if isinstance(err, wire.WireError):
        self._warn_wire(err)
    finally:
      link.closed = True
      await asyncio.to_thread(inbox.put, None)

  def _warn_client(self, link: Link, kind: str, what: str) -> None:
    """One warning per client and kind, naming the client; after
    :data:`_WARNED_CLIENTS` clients only counted (``stats()["refused"]``)."""
    key = f"client:{link.where}:{kind}"
    with self.runs.lock:
      self.refused[kind] = self.refused.get(kind, 0) + 1
      if key in self._warned_clients:
        return
      if len(self._warned_clients) >= _WARNED_CLIENTS:
        self._warn(
          "clients",
          f"braxviewer: more than {_WARNED_CLIENTS} clients of the training"
          " socket were refused something; further refusals are counted"
          " (server.stats()['refused']), not printed.",
        )
        return
      self._warned_clients.add(key)
    self._warn(key, f"braxviewer: a run from {link.where} {what}")

  def _warn_wire(self, err: BaseException) -> None:
    self._warn(
      "wire",
      "braxviewer: a connection to the training socket sent something"
      f" else than a braxviewer run ({' '.join(str(err).split())});"
      " it was closed.",
    )

  def _recorder_for(self, name: str) -> Optional[Recorder]:
    assert self.record_dir is not None
    base = os.path.join(self.record_dir, _dir_name(name))
    path, k = base, 2
    while os.path.exists(path):
      path, k = f"{base}-{k}", k + 1
    try:
      return Recorder(path, mode=Mode.LIVE)
    except Exception as err:
      self._warn(
        "record",
        f"braxviewer: cannot record run {name!r} to {path} ({err}).",
      )
      return None

  # -- applying a run's messages (a thread per connection) -------------------------

  def _work(
    self,
    run: Run,
    link: Link,
    inbox: "queue.Queue[Optional[wire.Message]]",
  ) -> None:
    while True:
      message = inbox.get()
      if message is None:
        break
      try:
        self._apply(run, link, message)
      except trust.Refused as refused:
        self._warn_client(
          link,
          refused.what,
          f"(run {run.name!r}) sent a {refused.what} message the server"
          f" refused: {refused.why} It was dropped; the run's stream goes"
          " on.",
        )
        link.send(wire.Rejected(refused.what, refused.why))
      except Exception as err:  # one bad message never stops the server
        self._warn(
          "apply",
          f"braxviewer: run {run.name!r} sent a message the server could"
          f" not apply ({type(err).__name__}: {err}); it was skipped.",
        )
    self.runs.leave(run, link)
    if run is self._shown and not run.links:
      self.playback.player.release_all()
    self._refresh_panel()

  def _apply(self, run: Run, link: Link, message: wire.Message) -> None:
    """Apply one message of ``run``, checked first (:mod:`trust`).

    Raises:
      trust.Refused: the message was not applied.
    """
    shown = run is self._shown
    if isinstance(message, wire.Chunk):
      trust.check_chunk(message.chunk, run.info)
      chunk = run.number(message.chunk)
      if chunk.source == "train":
        run.env_steps = max(run.env_steps, int(chunk.env_steps))
      if run.recorder is not None:
        run.recorder.on_chunk(chunk)
      if shown and self._ready() and self._feed.wanted == Mode.SYNC:
        run.pending = (chunk.source, int(message.chunk.seq))
        try:
          self.on_chunk(chunk)  # waits until shown; the player keeps it
        finally:
          run.pending = None
      else:
        with self._show_lock:  # not while the page switches runs
          if run is self._shown and self._ready():
            self.on_chunk(chunk)  # the player keeps it in run.store
          else:
            run.store.append(chunk)
      if message.ack:
        link.send(wire.Shown(message.chunk.source, int(message.chunk.seq)))
    elif isinstance(message, wire.Progress):
      if link.process != min(run.connected(), default=link.process):
        return  # one process's report is the run's
      message = trust.check_progress(message, run.reports)
      if 0 <= message.index < run.reports:
        return  # sent again after a reconnect: kept already
      run.reports = max(run.reports, message.index + 1)
      run.env_steps = max(run.env_steps, int(message.env_steps))
      if self.page is not None:
        self.page.add_progress(message.env_steps, message.metrics, run.name)
      if run.recorder is not None:
        run.recorder.on_progress(message.env_steps, message.metrics)
      if shown:
        self.on_progress(message.env_steps, message.metrics)
    elif isinstance(message, wire.Model):
      files, model = trust.check_model(message)
      run.files, run.model = files, model
      if run.info is not None:
        try:  # the stream so far no longer fits: wait for its new start
          trust.check_start(wire.Start(run.info), model)
        except trust.Refused:
          run.info = None
      if run.recorder is not None:
        run.recorder.init(files)
      if shown:
        self.init(run.model)
    elif isinstance(message, wire.Start):
      message = trust.check_start(message, run.model)
      link.process = int(message.process)
      run.processes = max(run.processes, int(message.processes))
      if message.again and run.info is not None:
        return  # a reconnect: the same stream goes on
      if run.info is not None and link.process != run.source[0]:
        return  # another process of the job: one stream per run
      run.info, run.ended = message.info, False
      run.reports = 0  # a new stream numbers its reports from 0
      if run.recorder is not None:
        run.recorder.on_stream_start(message.info)
      if shown:
        self.on_stream_start(message.info)
    elif isinstance(message, wire.Phase):
      message = trust.check_phase(message)
      run.phase = message.name
      if shown:
        self.on_phase(message.name)
    elif isinstance(message, wire.TrainerMode):
      mode = trust.check_trainer_mode(message)
      run.trainer_mode = mode.value
      if shown:
        self.on_trainer_mode(mode)
    elif isinstance(message, wire.End):
      if link.process != run.source[0]:
        return
      run.ended = True
      if run.recorder is not None:
        run.recorder.on_stream_end()
      if shown:
        self.on_stream_end()

  def _progress(self, env_steps: int, metrics: Mapping[str, float]) -> None:
    """Curves are added per run (in :meth:`_apply`), not by the feed."""

  # -- telling runs what to stream --------------------------------------------------

  def _control_for(self, run: Run) -> wire.Control:
    if run is self._shown:
      mode = self.mode
    else:  # live for its timeline (and recording): never waits on a page
      mode = Mode.OFF if run.ended else Mode.LIVE
    return wire.Control(mode.value, run.source[0], run.source[1])

  def _send_controls(self) -> None:
    for run in self.runs.all():
      control = self._control_for(run)
      if control != run.sent:
        run.sent = control
        for link in list(run.links):
          link.send(control)

  def _send_holding(self) -> None:
    """Tell each run waiting on a sync chunk that it is still being shown
    (a run that hears nothing for a while stops waiting)."""
    now = time.monotonic()
    if now - self._last_holding < _HOLDING_S:
      return
    self._last_holding = now
    for run in self.runs.all():
      pending = run.pending
      if pending is not None:
        for link in list(run.links):
          link.send(wire.Holding(pending[0], pending[1]))

  def _expire(self) -> None:
    if self.run_ttl_s is None:
      return
    for run in self.runs.expired(self.run_ttl_s):
      self._drop(run)

  def _tick(self) -> None:
    while not self._stop.wait(_TICK_S):
      try:
        self._send_holding()
        self._expire()
        self._send_controls()
        self._refresh_panel()
      except Exception as err:  # never let the ticker die silently
        self._warn("tick", f"braxviewer: the run ticker failed ({err}).")

  def _refresh_panel(self) -> None:
    with self._panel_lock:
      self._refresh_panel_now()

  def _refresh_panel_now(self) -> None:
    panel = self._panel
    if panel is None or self._closed:
      return
    rows = [
      RunRow(
        name=run.name,
        state=run.state,
        processes=run.processes,
        connected=run.connected(),
        source=run.source,
        where=run.where(),
        env_steps=run.env_steps,
      )
      for run in self.runs.all()
    ]
    shown = self._shown
    panel.show(rows, shown.name if shown is not None else "")

  def stats(self) -> Dict[str, Any]:
    """The viewer's counters, plus the runs (name -> state)."""
    out = super().stats()
    out["runs"] = {run.name: run.state for run in self.runs.all()}
    out["refused"] = dict(self.refused)
    return out


def _check_token(token: str) -> str:
  """A token given by the user: printable ASCII without spaces (it goes
  into URLs and headers)."""
  if not (8 <= len(token) <= 256) or not all(33 <= ord(c) < 127 for c in token):
    raise ValueError(
      "braxviewer: a server token must be 8 to 256 printable ASCII"
      " characters without spaces (e.g. python -c 'import secrets;"
      " print(secrets.token_urlsafe(24))')."
    )
  return token
