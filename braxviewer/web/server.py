"""The web server: a viser server on a checked port, stopped without leaks.

Owns the port policy (a clear error naming a busy port, or the next free port
when asked), the warning for public hosts, quieting viser's own console
output, turning socket faults from clients into one warning, and a full stop
(server thread, worker threads, listening socket).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import socket
import sys
import threading
import time
from typing import Callable, List, Optional
import warnings

import viser

from braxviewer.web.errors import PortInUseError, ViewerWarning

_PUBLIC_HOSTS = ("0.0.0.0", "::", "")


def port_is_free(host: str, port: int) -> bool:
  """Whether a server could listen on ``host:port`` now."""
  family = socket.AF_INET6 if ":" in host else socket.AF_INET
  with socket.socket(family, socket.SOCK_STREAM) as sock:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
      sock.bind((host, port))
    except OSError:
      return False
  return True


def pick_port(host: str, port: int, fallback: bool, tries: int = 100) -> int:
  """``port`` if free; else the next free port when ``fallback``, else raise."""
  if port == 0 or port_is_free(host, port):
    return port
  if not fallback:
    raise PortInUseError(
      f"braxviewer: port {port} on {host} is already in use (another viewer"
      f" or server?). Pick another port, e.g. WebViewer(port={port + 1}), or"
      " pass port_fallback=True to take the next free port."
    )
  for candidate in range(port + 1, min(port + 1 + tries, 65536)):
    if port_is_free(host, candidate):
      return candidate
  raise PortInUseError(
    f"braxviewer: ports {port}..{port + tries} on {host} are all in use."
  )


class _SocketFaultFilter(logging.Filter):
  """Turns websockets' tracebacks for a broken client into one warning."""

  def __init__(self, report: Callable[[str], None]):
    super().__init__()
    self._report = report

  def filter(self, record: logging.LogRecord) -> bool:
    message = record.getMessage()
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
  """Swallow viser's console banner (we print our own URL line)."""
  with contextlib.redirect_stdout(io.StringIO()):
    yield


class WebServer:
  """A running viser server.

  Args:
    host: interface to listen on; ``"0.0.0.0"`` serves the network (with a
      warning: the page has no authentication).
    port: TCP port; 0 lets the OS pick one.
    port_fallback: take the next free port when ``port`` is busy, instead of
      raising :class:`PortInUseError`.
    label: title of the page's control panel.
    on_fault: called with a message when a client breaks its connection.
  """

  def __init__(
    self,
    host: str = "127.0.0.1",
    port: int = 8000,
    port_fallback: bool = False,
    label: Optional[str] = None,
    on_fault: Optional[Callable[[str], None]] = None,
  ):
    if host in _PUBLIC_HOSTS:
      warnings.warn(
        f"braxviewer: serving on {host or 'all interfaces'}: anyone who can"
        " reach this machine can open the page and switch the streaming"
        " mode; there is no authentication. Prefer host='127.0.0.1' with an"
        " SSH tunnel (see docs/web.md).",
        ViewerWarning,
        stacklevel=3,
      )
    chosen = pick_port(host, port, port_fallback)
    self.host = host
    self._fault_filter = _SocketFaultFilter(on_fault or (lambda msg: None))
    self._ws_logger = logging.getLogger("websockets.server")
    self._ws_logger.addFilter(self._fault_filter)
    try:
      with _quiet_stdout():
        self.server = viser.ViserServer(
          host=host, port=chosen, label=label, verbose=False
        )
    except BaseException:
      self._ws_logger.removeFilter(self._fault_filter)
      raise
    self.port = int(self.server.get_port())
    if chosen and self.port != chosen:
      self.stop()
      raise PortInUseError(
        f"braxviewer: port {chosen} on {host} was taken while starting."
      )
    ws = self.server._websock_server
    self._thread = ws._server_thread
    self._loop = ws._background_event_loop
    self._stopped = False
    self.death: Optional[str] = None  # why the server thread died, if it did
    self._previous_hook = threading.excepthook
    threading.excepthook = self._excepthook
    if port and self.port != port:
      print(
        f"braxviewer: port {port} is in use; using {self.port} instead.",
        file=sys.stderr,
      )

  @property
  def url(self) -> str:
    shown = "localhost" if self.host in _PUBLIC_HOSTS else self.host
    if ":" in shown:
      shown = f"[{shown}]"
    return f"http://{shown}:{self.port}"

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
      executor.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + timeout
    thread = getattr(self, "_thread", None)
    for worker in workers + ([thread] if thread is not None else []):
      worker.join(max(0.0, deadline - time.monotonic()))
    if thread is not None and not thread.is_alive():
      self._reap_dead_loop()
    self._ws_logger.removeFilter(self._fault_filter)
    if threading.excepthook == self._excepthook:
      threading.excepthook = self._previous_hook
