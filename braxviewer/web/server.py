"""The web server: a viser server on a checked port, guarded, stopped without
leaks.

Owns the port policy (a clear error naming a busy port, also when the other
loopback family holds it, or the next free port when asked), who may use
the page (:mod:`access`: same-origin pages on loopback, a token beyond it,
checked on every HTTP request and websocket handshake), quieting viser's own
console output, turning socket faults from clients into one warning, and a
full stop (server thread, worker threads, listening socket).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import http
import inspect
import io
import logging
import socket
import sys
import threading
import time
from typing import (
  Any,
  Awaitable,
  Callable,
  Iterator,
  List,
  Mapping,
  Optional,
  Union,
)
import urllib.parse
import warnings

import viser
from viser._messages import RunJavascriptMessage
import websockets.asyncio.server as ws_server
from websockets.datastructures import Headers
from websockets.http11 import Response

from braxviewer.core import addresses, console
from braxviewer.web import access, frame_rates
from braxviewer.web.errors import PortInUseError, ViewerWarning

Token = Union[str, bool, None]  # "auto", a secret, or False/None: none


@dataclasses.dataclass(frozen=True)
class Route:
  """A websocket path of our own on the page's port.

  Args:
    handler: ``async handler(connection)``.
    private: the secret this path needs also on loopback (None: the
      page's rule); no browser page may open a private path.
  """

  handler: Callable[[Any], Awaitable[None]]
  private: Optional[access.Private] = None


def check_port(port: object) -> int:
  """``port`` as a TCP port number, or a ValueError naming it."""
  if isinstance(port, bool) or not isinstance(port, int):
    raise ValueError(f"braxviewer: port must be an int, got {port!r}.")
  if not 0 <= port <= 65535:
    raise ValueError(
      f"braxviewer: port must be in 0..65535 (0: any free port), got {port}."
    )
  return port


def port_is_free(host: str, port: int) -> bool:
  """Whether a server could listen on ``host:port`` now (every address the
  host resolves to)."""
  for address in addresses.addresses_of(host):
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
      sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError:  # no IPv6 on this machine: nothing can listen there
      continue
    with sock:
      sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
      try:
        sock.bind((address, port))
      except OSError as err:
        if family == socket.AF_INET6 and err.errno == 99:  # no ::1 here
          continue
        return False
  return True


def _holders(host: str, port: int) -> List[str]:
  """Where ``port`` is taken: on ``host``, and for a loopback host on the
  other loopback family too (a browser may resolve localhost to either)."""
  hosts = [host]
  if addresses.is_loopback(host):
    hosts += [h for h in ("127.0.0.1", "::1") if h not in hosts]
  return [h for h in hosts if not port_is_free(h, port)]


def pick_port(host: str, port: int, fallback: bool, tries: int = 100) -> int:
  """``port`` if free; else the next free port when ``fallback``, else raise."""
  port = check_port(port)
  if port == 0:
    return port
  taken = _holders(host, port)
  if not taken:
    return port
  if not fallback:
    where = " and ".join(f"[{h}]" if ":" in h else h for h in taken)
    raise PortInUseError(
      f"braxviewer: port {port} is already in use on {where} (another viewer"
      f" or server?). Pick another port, e.g. WebViewer(port={port + 1}) or"
      f" --port {port + 1}, or pass port_fallback=True to take the next free"
      " port."
    )
  for candidate in range(port + 1, min(port + 1 + tries, 65536)):
    if not _holders(host, candidate):
      return candidate
  raise PortInUseError(
    f"braxviewer: ports {port}..{port + tries} on {host} are all in use."
  )


def _guard(
  rules: access.Access,
  inner: Optional[Callable[..., Any]],
  on_frames: Optional[Callable[[str, int], None]] = None,
) -> Callable[..., Any]:
  """A websockets ``process_request`` that applies ``rules`` before
  ``inner`` (viser's file server), and takes the pages' frame reports
  (:mod:`frame_rates`)."""

  async def process_request(connection: Any, request: Any) -> Any:
    headers = {k.lower(): v for k, v in request.headers.raw_items()}
    refusal = rules.check(request.path, headers)
    if refusal is None and request.path.startswith(frame_rates.FRAMES_PATH):
      query = urllib.parse.parse_qs(urllib.parse.urlsplit(request.path).query)
      page, count = query.get("page", [""])[0], query.get("n", [""])[0]
      if on_frames is not None and page and count.isdigit():
        on_frames(page[:32], int(count))
      return Response(204, "No Content", Headers(), b"")
    if refusal is not None:
      return Response(
        refusal.status,
        http.HTTPStatus(refusal.status).phrase,
        Headers(
          [("Content-Type", "text/plain; charset=utf-8")]
          + list(refusal.headers)
        ),
        refusal.body.encode(),
      )
    if inner is None:
      return None
    answer = inner(connection, request)
    return await answer if inspect.isawaitable(answer) else answer

  return process_request


def _routed(
  handler: Callable[[Any], Awaitable[None]], routes: Mapping[str, Route]
) -> Callable[[Any], Awaitable[None]]:
  """viser's websocket handler, with ``routes`` (path -> route) taking
  the websockets opened on their paths (after the access check)."""

  async def route(connection: Any) -> None:
    request = getattr(connection, "request", None)
    path = urllib.parse.urlsplit(getattr(request, "path", "") or "").path
    own = routes.get(path)
    await (own.handler(connection) if own is not None else handler(connection))

  return route


@contextlib.contextmanager
def _guarded_serve(
  rules: access.Access,
  on_frames: Optional[Callable[[str, int], None]],
  routes: Optional[Mapping[str, Route]] = None,
) -> Iterator[List[bool]]:
  """While viser starts, its websockets server gets :func:`_guard` in front
  of its own request handler (viser has no hook for it), and ``routes``
  their websocket paths. Yields a list that holds True once the guard was
  installed."""
  installed: List[bool] = []
  original = ws_server.serve

  def serve(*args: Any, **kwargs: Any) -> Any:
    kwargs["process_request"] = _guard(
      rules, kwargs.get("process_request"), on_frames
    )
    if routes and args:
      args = (_routed(args[0], routes),) + tuple(args[1:])
    installed.append(True)
    return original(*args, **kwargs)

  ws_server.serve = serve
  try:
    yield installed
  finally:
    ws_server.serve = original


def _pool_stopped(err: Optional[BaseException]) -> bool:
  """Whether ``err`` is viser's thread pool refusing work because it was
  stopped: by :meth:`WebServer.stop`, or by Python as a script's main thread
  ends while a thread of its own still runs (the page's next message or
  disconnect then fails in the server; see ``web.host``)."""
  return isinstance(err, RuntimeError) and str(err).startswith(
    "cannot schedule new futures after"
  )


class _SocketFaultFilter(logging.Filter):
  """Turns the tracebacks of a client's bad input into one warning: a
  broken connection (websockets' log), or a message viser failed to apply
  (a value of the wrong type: asyncio's "Task exception was never
  retrieved")."""

  def __init__(self, report: Callable[[str], None]):
    super().__init__()
    self._report = report

  def filter(self, record: logging.LogRecord) -> bool:
    message = record.getMessage()
    if _pool_stopped(record.exc_info[1] if record.exc_info else None):
      return False  # the server's own end, not a client's: nothing to say
    if message.startswith("Task exception was never retrieved") and (
      "_handle_incoming_message" in message
    ):
      err = record.exc_info[1] if record.exc_info else None
      self._report(
        "a page sent a value the viewer cannot use"
        f" ({type(err).__name__ if err else 'unknown error'}: {err}); it was"
        " ignored, the viewer and training go on."
      )
      return False
    if message in ("connection handler failed", "opening handshake failed"):
      err = record.exc_info[1] if record.exc_info else None
      self._report(
        f"a browser connection sent data the server could not read"
        f" ({type(err).__name__ if err else 'unknown error'}); that"
        " connection was closed, the viewer and training go on."
      )
      return False
    return True


@contextlib.contextmanager
def _quiet_stdout():
  """Swallow viser's console banner (we print our own URL line), unless
  verbose (:mod:`braxviewer.core.console`)."""
  if console.is_verbose():
    yield
    return
  with contextlib.redirect_stdout(io.StringIO()):
    yield


class WebServer:
  """A running viser server.

  Args:
    host: interface to listen on. Loopback (the default, ``"127.0.0.1"``)
      serves this machine only; anything else serves the network, where
      the page needs a token.
    port: TCP port; 0 lets the OS pick one.
    port_fallback: take the next free port when ``port`` is busy, instead of
      raising :class:`PortInUseError`.
    label: title of the page's control panel.
    on_fault: called with a message when a client breaks its connection.
    token: ``"auto"``: a random token when serving beyond loopback, none on
      loopback; a string: that token, always; False or None: no token, also
      beyond loopback (with a warning).
    on_frames: ``on_frames(page, frames)`` for each page's frame count
      (see :mod:`frame_rates`; None: the pages are not asked).
    routes: websocket paths served by handlers of ours (:class:`Route`,
      e.g. training runs connecting to a viewer server), behind the same
      access check as the page, or their own secret (``Route.private``).

  Raises:
    ValueError: a port outside 0..65535, or a host that does not resolve.
    PortInUseError: the port is taken and no fallback was allowed.
  """

  def __init__(
    self,
    host: str = "127.0.0.1",
    port: int = 8000,
    port_fallback: bool = False,
    label: Optional[str] = None,
    on_fault: Optional[Callable[[str], None]] = None,
    token: Token = "auto",
    on_frames: Optional[Callable[[str, int], None]] = None,
    routes: Optional[Mapping[str, Route]] = None,
  ):
    check_port(port)
    loopback = addresses.is_loopback(host)
    if token == "auto":
      secret = None if loopback else access.new_token()
    elif isinstance(token, str) and token:
      secret = token
    elif token in (None, False):
      secret = None
    else:
      raise ValueError(
        f"braxviewer: token must be 'auto', a non-empty string, False or"
        f" None, got {token!r}."
      )
    if not loopback and secret is None:
      warnings.warn(
        f"braxviewer: serving on {host or 'all interfaces'} without a token:"
        " anyone who can reach this machine can open the page, watch and"
        " switch the streaming mode. Prefer the default token, or"
        " host='127.0.0.1' with an SSH tunnel (see docs/web.md).",
        ViewerWarning,
        stacklevel=3,
      )
    private = {
      path: route.private
      for path, route in (routes or {}).items()
      if route.private is not None
    }
    self.rules = access.Access(token=secret, loopback=loopback, private=private)
    chosen = pick_port(host, port, port_fallback)
    self.host = host
    self._fault_filter = _SocketFaultFilter(on_fault or (lambda msg: None))
    self._loggers = [
      logging.getLogger(n) for n in ("websockets.server", "asyncio")
    ]
    for logger in self._loggers:
      logger.addFilter(self._fault_filter)
    try:
      with (
        _quiet_stdout(),
        _guarded_serve(self.rules, on_frames, routes) as guarded,
      ):
        self.server = viser.ViserServer(
          host=host, port=chosen, label=label, verbose=console.is_verbose()
        )
    except BaseException:
      for logger in self._loggers:
        logger.removeFilter(self._fault_filter)
      raise
    ws = self.server._websock_server
    self._thread = ws._server_thread
    self._loop = ws._background_event_loop
    self._stopped = False
    self.death: Optional[str] = None  # why the server thread died, if it did
    self._previous_hook = threading.excepthook
    threading.excepthook = self._excepthook
    self.port = int(self.server.get_port())
    if not guarded:  # never serve the page unguarded
      self.stop()
      raise RuntimeError(
        "braxviewer: could not install the page's access check in this viser"
        f" version ({viser.__version__}); braxviewer is tested with 1.1.1."
      )
    if chosen and self.port != chosen:
      self.stop()
      raise PortInUseError(
        f"braxviewer: port {chosen} on {host} was taken while starting."
      )
    if on_frames is not None:  # every page (also later ones) reports
      ws.queue_message(RunJavascriptMessage(source=frame_rates.SCRIPT))
    if port and self.port != port:
      print(
        f"braxviewer: port {port} is in use; using {self.port} instead.",
        file=sys.stderr,
      )

  @property
  def url(self) -> str:
    """The page's address (with its token, when it needs one)."""
    shown = self.host
    if addresses.is_unspecified(shown):  # every interface: this machine's name
      shown = socket.gethostname()
    if ":" in shown:
      shown = f"[{shown}]"
    token = f"/?token={self.rules.token}" if self.rules.token else ""
    return f"http://{shown}:{self.port}{token}"

  def _excepthook(self, args) -> None:
    """The server thread's own death is reported by the viewer, once;
    every other thread goes to the previous hook."""
    if args.thread is not None and args.thread is self._thread:
      self.death = f"{args.exc_type.__name__}: {args.exc_value}"
      return
    self._previous_hook(args)

  def _reap_dead_loop(self) -> None:
    """Close what a dead server thread left open (its listening socket).

    Runs the dead loop to the end of its tasks in a helper thread: the caller
    may have an event loop of its own running (Jupyter, Playwright).
    """
    loop = self._loop
    if loop is None or loop.is_closed() or loop.is_running():
      return

    def reap() -> None:
      try:
        stop_event = self.server._websock_server._stop_event
        if stop_event is not None:
          stop_event.set()
        pending = asyncio.all_tasks(loop)
        if pending:
          loop.run_until_complete(asyncio.wait(pending, timeout=2.0))
        loop.close()
      except Exception:
        pass  # best effort: the process keeps going either way

    helper = threading.Thread(target=reap, name="braxviewer-reap", daemon=True)
    helper.start()
    helper.join(5.0)

  def alive(self) -> bool:
    """Whether the server thread still serves."""
    return (
      not self._stopped and self._thread is not None and self._thread.is_alive()
    )

  def stop(self, timeout: float = 5.0) -> None:
    """Stop serving; joins the server thread and viser's worker threads."""
    if getattr(self, "_stopped", False):
      return
    self._stopped = True
    executor = getattr(self.server, "_thread_executor", None)
    workers: List[threading.Thread] = list(
      getattr(executor, "_threads", ()) or ()
    )
    try:
      with _quiet_stdout():
        self.server.stop()
    except Exception:
      pass  # a server whose loop died cannot be stopped more
    if executor is not None:
      workers = list(getattr(executor, "_threads", ()) or ()) or workers
      # Let the callbacks queued as the pages went (their disconnects) run:
      # viser prints "Task was cancelled" for each one cancelled. The join
      # below bounds the wait.
      executor.shutdown(wait=False)
    deadline = time.monotonic() + timeout
    thread = getattr(self, "_thread", None)
    for worker in workers + ([thread] if thread is not None else []):
      worker.join(max(0.0, deadline - time.monotonic()))
    if thread is not None and not thread.is_alive():
      self._reap_dead_loop()
    for logger in self._loggers:
      logger.removeFilter(self._fault_filter)
    if threading.excepthook == self._excepthook:
      threading.excepthook = self._previous_hook
