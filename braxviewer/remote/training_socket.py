"""The training socket's end on the viewer server.

:class:`TrainingSocket` serves each connection a run opens (the websocket
path :data:`~braxviewer.remote.wire.PATH`, behind the server's token): its
:class:`~braxviewer.remote.wire.Hello` (checked, within 10 s), the run it
joins (by the run's key, :class:`~braxviewer.remote.runs.RunBook`), its
recording, and a thread of its own that applies its messages in order
(:class:`~braxviewer.remote.apply.RunMessages`), so a sync wait never holds
the socket loop or another run. A refused message is said once per client
and kind, naming it, and told to the run. No JAX.
"""

from __future__ import annotations

import asyncio
import os
import queue
import re
import threading
from typing import Any, Callable, Dict, Optional, Set

from braxviewer.core.protocol import Mode
from braxviewer.record import Recorder
from braxviewer.remote import trust, wire
from braxviewer.remote.apply import RunMessages
from braxviewer.remote.runs import Link, Run, RunBook

_HELLO_TIMEOUT_S = 10.0
_WARNED_CLIENTS = 20  # clients warned about by name; then only counted


def _dir_name(name: str) -> str:
  return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "run"


class TrainingSocket:
  """Serves the connections of training runs.

  Args:
    runs: the server's runs.
    messages: what each message does.
    warn: ``warn(key, message)``, each key once.
    record_dir: record each run to ``record_dir/<run name>`` (None: no).
    on_joined: ``on_joined(run)``: a connection joined ``run``.
    on_left: ``on_left(run)``: a connection of ``run`` ended.
  """

  def __init__(
    self,
    runs: RunBook,
    messages: RunMessages,
    *,
    warn: Callable[[str, str], None],
    record_dir: Optional[str],
    on_joined: Callable[[Run], None],
    on_left: Callable[[Run], None],
  ):
    self._runs = runs
    self._messages = messages
    self._warn = warn
    self._record_dir = record_dir
    self._on_joined = on_joined
    self._on_left = on_left
    self.refused: Dict[str, int] = {}  # messages refused, by kind
    self._warned_clients: Set[str] = set()

  async def serve(self, connection: Any) -> None:
    """One connection of a run, to its end (the route's handler)."""
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
    run, taken = self._runs.join(hello, link)
    if taken and hello.named:
      self._warn_client(
        link,
        "name",
        f"asked for run {hello.run!r}, which belongs to another run (its"
        f" key differs); it streams as {run.name!r}.",
      )
    if run.recorder is None and self._record_dir is not None:
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
    self._on_joined(run)
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
    with self._runs.lock:
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
    assert self._record_dir is not None
    base = os.path.join(self._record_dir, _dir_name(name))
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
        self._messages.apply(run, link, message)
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
    self._runs.leave(run, link)
    self._on_left(run)
