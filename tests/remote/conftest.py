"""What the viewer server's tests share: a server on a free port, and runs
connected to it (closed after the test)."""

from __future__ import annotations

from typing import Iterator, List

import pytest

import braxviewer
from braxviewer.remote.client import RemoteViewer
from braxviewer.remote.server import ViewerServer


@pytest.fixture
def server() -> Iterator[ViewerServer]:
  """A viewer server on loopback, any free port."""
  server = ViewerServer(port=0).run()
  yield server
  server.close()


@pytest.fixture
def runs():
  """``runs(address, **options)``: a ``braxviewer.connect`` viewer, closed
  at the end of the test."""
  made: List[RemoteViewer] = []

  def make(address: str, **kw) -> RemoteViewer:
    viewer = braxviewer.connect(address, **kw)
    made.append(viewer)
    return viewer

  yield make
  for viewer in made:
    viewer.close()
