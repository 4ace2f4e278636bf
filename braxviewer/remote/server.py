"""``python -m braxviewer serve``: a viewer server that outlives training runs.

:class:`ViewerServer` holds an in-process web viewer (:attr:`web`: the
same page, on the same port) and the training socket
(:class:`~braxviewer.remote.training_socket.TrainingSocket`, on the
websocket path :data:`braxviewer.remote.wire.PATH`) that training runs
connect to with ``braxviewer.connect``. Each connection speaks for one
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

import atexit
import os
import threading
import time
from typing import Any, Dict, Optional
import warnings

from braxviewer.core import addresses
from braxviewer.core.protocol import Mode
from braxviewer.remote import token_file, trust, wire
from braxviewer.remote.apply import RunMessages
from braxviewer.remote.runs import Run, RunBook
from braxviewer.remote.training_socket import TrainingSocket
from braxviewer.web import access
from braxviewer.web.errors import ViewerWarning
from braxviewer.web.host import PageHost, ShowsPage
from braxviewer.web.runs_panel import RunRow, RunsPanel
from braxviewer.web.server import Route, Token
from braxviewer.web.viewer import WebViewerBatched

_TICK_S = 0.2  # how often runs are told what to stream, the panel refreshed
_HOLDING_S = 1.0  # how often a run waiting on a sync chunk hears "holding"
DEFAULT_RUN_TTL_S = 24 * 3600.0


class ViewerServer(ShowsPage):
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
    layout: ``"grid"``, ``"overlay"`` or ``"auto"`` (see ``WebViewerBatched``).
    title: the page's panel title.
    run_ttl_s: a run with no connection left is forgotten after this many
      seconds (its recording stays on disk); None: kept until *Forget run*.
  """

  quit_button = False  # no page may stop a server that serves every run

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
      if token == "auto" and not addresses.is_loopback(host):
        token = secret  # one secret for the page and the runs
    if run_ttl_s is not None and not float(run_ttl_s) > 0:
      raise ValueError(
        f"braxviewer: run_ttl_s must be a positive number of seconds or"
        f" None, got {run_ttl_s!r}."
      )
    hint = (
      "On the server's machine braxviewer.connect reads it from"
      f" {token_file.folder()}/serve-PORT.token (the server's user only);"
      " elsewhere pass braxviewer.connect(..., token=...)."
    )
    route = Route(
      lambda connection: self.socket.serve(connection),
      private=access.Private(secret, hint),
    )
    # the page: the in-process web viewer, fed the shown run's stream
    self.web = WebViewerBatched(
      host=host,
      port=port,
      mode=mode,
      port_fallback=port_fallback,
      history=history,
      title=title,
      token=token,
      layout=layout,
      routes={wire.PATH: route},
      curves=False,  # a line per run, drawn here
    )
    self.host: PageHost = self.web.host  # the page's server and thread
    self.web.empty_note = (
      "No run yet: a training script joins with"
      " braxviewer.connect(address, run=name)."
    )
    self.record_dir = None if record_dir is None else os.fspath(record_dir)
    if self.record_dir is not None:
      os.makedirs(self.record_dir, exist_ok=True)
    self.runs = RunBook(history=history)
    self.run_ttl_s = None if run_ttl_s is None else float(run_ttl_s)
    self._secret = secret
    self.token_file: Optional[str] = None  # where this user's runs read it
    self._last_holding = 0.0
    self._shown: Optional[Run] = None
    self._auto: Optional[str] = None  # the run shown for being first
    self._show_lock = threading.RLock()
    self._panel: Optional[RunsPanel] = None
    self._panel_lock = threading.Lock()
    self._ticker: Optional[threading.Thread] = None
    self._stop = threading.Event()
    self.socket = TrainingSocket(
      self.runs,
      RunMessages(self.web, lambda: self._shown, self._show_lock),
      warn=self.web.warn,
      record_dir=self.record_dir,
      on_joined=self._joined,
      on_left=self._left,
    )

  # -- lifecycle -------------------------------------------------------------------

  def run(self) -> "ViewerServer":
    """Serve the page and the training socket; print the address."""
    if self.page is None:
      self.web.run()
      assert self.page is not None
      self._panel = self.page.add_runs_panel(
        self.show_run, self.set_stream_source, self.forget_run
      )
      self._ticker = threading.Thread(
        target=self._tick, name="braxviewer-runs", daemon=True
      )
      self._ticker.start()
      atexit.register(self.close)  # recordings closed, token file removed
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
    if self._stop.is_set():
      return
    self._stop.set()
    atexit.unregister(self.close)
    if self._ticker is not None:
      self._ticker.join(2.0)
    for run in self.runs.all():
      if run.recorder is not None:
        run.recorder.close()
    if self.token_file is not None:
      token_file.remove(self.port, self._secret)
      self.token_file = None
    self.web.close()

  def _connect_address(self) -> str:
    url = wire.redact(self.url or "").split("/?", 1)[0]
    return url.split("://", 1)[-1].rstrip("/")

  # -- the page's parts ----------------------------------------------------------

  @property
  def mode(self) -> Mode:
    """The streaming mode the page asks of the shown run."""
    return self.web.mode

  def set_mode(self, mode: "Mode | str") -> None:
    """Switch the shown run's streaming mode."""
    self.web.set_mode(mode)

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
      self.web.expect_envs(
        run.info.num_envs
        if run.info is not None
        else max(1, min(16, trust.MAX_DRAWN_BODIES // run.model.nbody))
        if run.model is not None
        else 0
      )
      if run.model is not None:
        self.web.init(run.model)
      if run.info is not None:
        self.web.on_stream_start(run.info)
      # after the rebuild the two calls above queued on the viewer thread
      self.playback.call_soon(lambda: setattr(player, "ready", True))
      self.web.take_run(  # its state and its own counts, not the last run's
        started=run.info is not None,
        ended=run.ended,
        phase=run.phase,
        trainer_mode=(
          None if run.trainer_mode is None else Mode.parse(run.trainer_mode)
        ),
        env_steps=run.env_steps,
        connected=lambda: bool(run.links),
      )
      if run.ended:
        self.web.on_stream_end()
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

  def _joined(self, run: Run) -> None:
    """A connection joined ``run``: the first run to connect is shown."""
    with self.runs.lock:
      first = self._shown is None and self._auto is None
      if first:
        self._auto = run.name
    if first:
      threading.Thread(
        target=self.show_run, args=(run.name,), daemon=True
      ).start()

  def _left(self, run: Run) -> None:
    """A connection of ``run`` closed (its messages all applied)."""
    if run is self._shown and not run.links:
      self.playback.player.release_all()
    self._refresh_panel()

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
        self.web.warn("tick", f"braxviewer: the run ticker failed ({err}).")

  def _refresh_panel(self) -> None:
    with self._panel_lock:
      self._refresh_panel_now()

  def _refresh_panel_now(self) -> None:
    panel = self._panel
    if panel is None or self._stop.is_set():
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
    out = self.host.stats()
    out["runs"] = {run.name: run.state for run in self.runs.all()}
    out["refused"] = dict(self.socket.refused)
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
