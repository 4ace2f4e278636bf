"""The web server's ports and hosts."""

from __future__ import annotations

import socket

import pytest

from braxviewer import WebViewer
from braxviewer.web.errors import PortInUseError, ViewerWarning
from braxviewer.web.server import pick_port


def test_busy_port_is_named_or_skipped():
  with socket.socket() as busy:
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    with pytest.raises(PortInUseError, match=str(port)):
      pick_port("127.0.0.1", port, fallback=False)
    assert pick_port("127.0.0.1", port, fallback=True) > port


def test_viewer_on_busy_port_raises_clear_error_or_falls_back(capsys):
  with socket.socket() as busy:
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    with pytest.raises(PortInUseError, match=f"port {port}"):
      WebViewer(port=port).run()
    with WebViewer(port=port, port_fallback=True) as viewer:
      assert viewer.port != port and str(viewer.port) in viewer.url
  assert f"port {port} is in use" in capsys.readouterr().err


def test_public_host_warns_no_auth():
  with pytest.warns(ViewerWarning, match="no authentication"):
    viewer = WebViewer(host="0.0.0.0", port=0).run()
  viewer.close()
