"""The web server's ports and hosts."""

from __future__ import annotations

import http.client
import socket
import time
from typing import Dict, Tuple
import urllib.parse
import warnings

import pytest
from websockets.exceptions import InvalidStatus

from braxviewer import WebViewer
from braxviewer.core import addresses
from braxviewer.core.protocol import Mode, StreamInfo
from braxviewer.testing.factories import stream_info
from braxviewer.testing.synthetic import PUCK_XML
from braxviewer.web.errors import PortInUseError, ViewerWarning
from braxviewer.web.server import pick_port


def get(url: str, **headers: str) -> Tuple[int, Dict[str, str]]:
  """Status and headers of a GET (redirects not followed)."""
  parts = urllib.parse.urlsplit(url)
  conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
  try:
    conn.request(
      "GET",
      (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
      headers=headers,
    )
    response = conn.getresponse()
    return response.status, dict(response.getheaders())
  finally:
    conn.close()


def one_env_info() -> StreamInfo:
  return stream_info(1, chunk_length=3)


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


@pytest.mark.parametrize("host", ["0", "0.0.0.00", "0.0.0.0", "::", ""])
def test_every_spelling_of_all_interfaces_is_the_network(host):
  assert addresses.addresses_of(host) and not addresses.is_loopback(host)
  for local in ("127.0.0.1", "localhost", "::1"):
    assert addresses.is_loopback(local)


def test_serving_the_network_needs_the_printed_token_by_default(
  wait_until, raw_page
):
  with warnings.catch_warnings():
    warnings.simplefilter("error")  # a token: nothing to warn about
    viewer = WebViewer(host="0", port=0).run()
  try:
    assert "?token=" in viewer.url
    token = viewer.url.split("token=")[1]
    base = f"http://127.0.0.1:{viewer.port}"
    assert get(base)[0] == 403  # no token: refused
    assert get(base + "/?token=wrong")[0] == 403
    status, headers = get(base + f"/?token={token}")
    assert status == 302 and headers["Location"] == "/"
    cookie = headers["Set-Cookie"].split(";")[0]
    assert get(base, Cookie=cookie)[0] == 200  # the page, from the cookie
    with pytest.raises(InvalidStatus, match="403"):
      with raw_page(viewer, headers={}):  # a socket without it: refused
        pass
    with raw_page(viewer, headers={"Cookie": cookie}):
      assert wait_until(lambda: viewer.clients() == 1, timeout=10)
  finally:
    viewer.close()


def test_serving_the_network_without_a_token_is_an_explicit_choice():
  with pytest.warns(ViewerWarning, match="without a token"):
    viewer = WebViewer(host="0.0.0.0", port=0, token=False).run()
  viewer.close()
  with pytest.raises(ValueError, match="token must be"):
    WebViewer(port=0, token=123).run()


@pytest.mark.parametrize("port", [70000, -1, 8000.5, True])
def test_ports_out_of_range_are_refused_clearly(port):
  with pytest.raises(ValueError, match="port must be"):
    WebViewer(port=port)


def test_a_server_on_the_other_loopback_family_takes_the_port_too():
  with socket.socket(socket.AF_INET6) as other:
    other.bind(("::1", 0))
    other.listen()
    port = other.getsockname()[1]
    # a browser asked for localhost:port may reach [::1]:port first
    with pytest.raises(PortInUseError, match=r"\[::1\]"):
      pick_port("127.0.0.1", port, fallback=False)
    assert pick_port("127.0.0.1", port, fallback=True) != port


def test_only_the_viewers_own_page_may_open_its_socket(raw_page):
  with WebViewer(port=0) as viewer:
    with raw_page(viewer, origin=viewer.url):  # the page itself
      pass
    with raw_page(viewer, origin=None):  # a local program (no Origin)
      pass
    for origin in (
      "http://evil.example.com",
      f"http://127.0.0.1:{viewer.port + 1}",  # another port
      "null",
    ):
      with pytest.raises(InvalidStatus, match="403"):
        with raw_page(viewer, origin=origin):
          pass
    # a DNS-rebinding page: its requests name another host
    assert get(viewer.url, Host=f"evil.example.com:{viewer.port}")[0] == 403


def test_bad_control_values_from_a_page_are_ignored_with_one_warning_each(
  make_chunk, wait_until, raw_page
):
  viewer = WebViewer(port=0, mode="sync").run()
  viewer.init(PUCK_XML)
  panels = viewer.page.panels
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    # a page whose camera reports nonsense, then sends nonsense values
    with raw_page(viewer, fov=float("nan"), width=-5) as page:
      assert wait_until(lambda: viewer.clients() == 1, timeout=10)
      for handle, value in [
        (panels.timeline.speed, 1e308),  # clamped to the slider's 4
        (panels.mode, "bogus"),
        (panels.mode, "bogus"),  # the same kind again: no second warning
        (panels.env, float("nan")),  # viser itself cannot cast it
        (panels.timeline.speed, float("nan")),
        (panels.timeline.goto, 1e300),
        (panels.timeline.timeline, -1e9),
      ]:
        page.set(handle, value)
      assert wait_until(lambda: viewer.playback.player.speed == 4.0)
      viewer.page.apply_camera("top")  # sized from the page's camera
      time.sleep(0.5)
    # viser keeps widget values for pages that come later: none of those
    # values may break them (an int beyond 64 bits could not be sent)
    assert panels.timeline.goto.value < 2**53
    for _ in range(2):
      with raw_page(viewer) as later:
        assert later.receive_all() > 0  # the state arrives; no 1011 close
  ours = [str(w.message) for w in caught if w.category is ViewerWarning]
  assert len(ours) == 5, ours  # mode, viser's cast, speed, goto, timeline
  assert any("'bogus'" in m for m in ours)
  assert any("NaN" in m for m in ours) and any("'Speed'" in m for m in ours)
  assert viewer.failed is None and viewer.mode == Mode.SYNC
  ticket_shown = viewer.stats()["frames_shown"]
  viewer.on_stream_start(one_env_info())
  viewer.on_chunk(make_chunk(t=3, n=1))  # sync still shows and returns
  assert viewer.stats()["frames_shown"] >= ticket_shown + 3
  viewer.close()


def test_a_pause_ends_with_the_page_that_made_it_while_others_watch(
  wait_until, raw_page
):
  viewer = WebViewer(port=0, mode="sync").run()
  viewer.init(PUCK_XML)
  try:
    with raw_page(viewer) as watcher:
      with raw_page(viewer) as pauser:
        assert wait_until(lambda: viewer.clients() == 2, timeout=10)
        pauser.set(viewer.page.panels.timeline.play, False)
        assert wait_until(lambda: viewer.playback.player.paused, timeout=10)
      # the page that paused is gone; the one that stays did not pause
      assert wait_until(lambda: not viewer.playback.player.paused, timeout=10)
      assert viewer.clients() == 1 and viewer.mode == Mode.SYNC
      play = viewer.page.panels.timeline.play
      assert wait_until(lambda: play.value, timeout=10)  # the page shows it
      watcher.set(play, False)  # its own pause
      assert wait_until(lambda: viewer.playback.player.paused, timeout=10)
    viewer.playback.set_paused(False)
    viewer.playback.set_paused(True)  # from Python: no page owns it
    time.sleep(0.5)
    assert viewer.playback.player.paused
  finally:
    viewer.close()
