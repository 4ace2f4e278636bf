"""A fake viewer server for the tests of what a run does when the server
misbehaves: it welcomes a run, asks for sync, and never shows a chunk."""

from __future__ import annotations

import threading

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import serve as ws_serve

from braxviewer.remote import wire


class SilentServer:
  """Welcomes every run, asks it for sync, counts its chunks, never
  answers one (no Shown, no Holding)."""

  def __init__(self):
    self.chunks = 0
    self._server = ws_serve(self._handle, "127.0.0.1", 0)
    self.port = self._server.socket.getsockname()[1]
    threading.Thread(target=self._server.serve_forever, daemon=True).start()

  def _handle(self, ws) -> None:
    hello = wire.decode(ws.recv())
    ws.send(wire.encode(wire.Welcome(hello.run)))
    ws.send(wire.encode(wire.Control("sync")))
    try:
      for data in ws:
        self.chunks += isinstance(wire.decode(data), wire.Chunk)
    except ConnectionClosed:
      pass

  def close(self) -> None:
    self._server.shutdown()
