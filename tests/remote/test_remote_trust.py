"""The viewer server trusts no client, without JAX.

Attacks as a local user would try them against a viewer server (in this
process, on loopback) with the wire format by hand: asset names that are
paths, a connection without the server's token, a stranger joining a run by
name, numbers off the run's model, a server that asks for sync and never
answers, tokens in printed lines, runs that never go away. Each must be
refused at the boundary (``remote/trust.py``, ``web/access.py``), said once
naming the client, with the run's own stream untouched.
"""

from __future__ import annotations

import dataclasses
import os
import stat
import time
import warnings

from fake_server import SilentServer
import numpy as np
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

import braxviewer
from braxviewer.core.protocol import Mode, StreamInfo
from braxviewer.record import model_store
from braxviewer.record.model_store import check_asset_name
from braxviewer.remote import client as client_module
from braxviewer.remote import token_file, trust, wire
from braxviewer.remote.client import (
  RemoteViewer,
  ServerLost,
  ServerRefused,
  ServerSlow,
)
from braxviewer.remote.server import ViewerServer

NQ = 8  # the puck model's qpos width (conftest.puck_model)
BAD_NAMES = (
  "/abs/evil.png",
  "../evil.png",
  "a/../../evil.png",
  "nul\x00.png",
  "x" * 300 + ".png",
  "C:evil.png",
  "C:\\evil.png",
  "..",
  "",
)


def _info(n: int = 2, **kw) -> StreamInfo:
  return StreamInfo(
    **{
      **dict(
        num_envs=n,
        num_train_envs=n,
        envs_per_device=n,
        kind="qpos",
        nq=NQ,
        num_links=None,
        dt=0.01,
        chunk_length=10,
        reward_terms=("r",),
      ),
      **kw,
    }
  )


def _mjb(model) -> bytes:
  return model_store.capture(model).mjb


class Raw:
  """A client speaking the wire format by hand (what an attacker writes)."""

  def __init__(self, server: ViewerServer, run: str, key: str = "k" * 16):
    uri, _ = wire.address_of(f"127.0.0.1:{server.port}")
    self.ws = ws_connect(
      uri,
      additional_headers={"Authorization": f"Bearer {server.secret}"},
      max_size=wire.MAX_MESSAGE_BYTES,
    )
    self.send(wire.Hello(run, True, "attacker", 4242, key))
    welcome = self.receive(wire.Welcome)
    self.run = welcome.run

  def send(self, message) -> None:
    self.ws.send(wire.encode(message))

  def receive(self, kind, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
      message = wire.decode(self.ws.recv(timeout=deadline - time.monotonic()))
      if isinstance(message, kind):
        return message
    raise TimeoutError(f"no {kind.__name__}")

  def close(self) -> None:
    self.ws.close()


def _kept(run) -> list:
  return list(run.store.chunks("train"))


def _victim(server, runs, puck_model, make_chunk, wait_until, chunks=3):
  viewer = runs(f"127.0.0.1:{server.port}", run="victim", num_envs=2)
  viewer.init(puck_model)
  assert viewer.wait_connected(10)
  viewer.on_stream_start(_info())
  assert wait_until(lambda: viewer.mode == Mode.LIVE)
  for i in range(chunks):
    viewer.on_chunk(make_chunk(n=2, seq=i, steps=(i + 1) * 20))
    viewer.on_progress((i + 1) * 20, {"eval/episode_reward": float(i)})
  run = server.runs.get("victim")
  assert wait_until(lambda: len(_kept(run)) == chunks and run.reports == chunks)
  return viewer, run


# -- files ---------------------------------------------------------------------


def test_asset_names_that_are_paths_are_refused_with_the_reason():
  for name in BAD_NAMES:
    with pytest.raises(ValueError, match="asset name"):
      check_asset_name(name)
  for name in ("mesh.stl", "a b.png", "Ünïcode.obj", "x.y.z"):
    assert check_asset_name(name) == name


def test_no_asset_name_a_client_sends_writes_outside_the_run_folder(
  tmp_path, puck_model, wait_until
):
  record_dir = tmp_path / "runs"
  server = ViewerServer(port=0, record_dir=str(record_dir)).run()
  outside = tmp_path / "evil.png"
  outside.write_bytes(b"precious")  # an existing file the attacker targets
  try:
    with warnings.catch_warnings(record=True) as caught:
      warnings.simplefilter("always")
      raw = Raw(server, "intruder")
      for name in BAD_NAMES + (str(outside),):
        raw.send(wire.Model(_mjb(puck_model), "<mujoco/>", {name: b"EVIL"}))
        refused = raw.receive(wire.Rejected)
        assert refused.what == "model" and "asset name" in refused.why
      raw.send(wire.Model(_mjb(puck_model), "<mujoco/>", {"ok.png": b"png"}))
      run = server.runs.get("intruder")
      assert wait_until(lambda: run.model is not None)
      raw.close()
  finally:
    server.close()
  assert outside.read_bytes() == b"precious"
  written = sorted(
    os.path.relpath(os.path.join(d, f), tmp_path)
    for d, _, files in os.walk(tmp_path)
    for f in files
  )
  assert all(w.startswith("runs/intruder/") for w in written if w != "evil.png")
  assert "runs/intruder/model/assets/ok.png" in written
  assert not any(
    "EVIL" in open(tmp_path / w, "rb").read().decode("latin-1") for w in written
  )
  said = [str(w.message) for w in caught if "refused" in str(w.message)]
  assert len(said) == 1, said  # once per client and kind, naming it
  assert "attacker, pid 4242" in said[0] and "asset name" in said[0]


def test_a_recorded_model_never_reads_an_asset_outside_its_folder(tmp_path):
  with pytest.raises(ValueError, match="asset name"):
    model_store.write(
      str(tmp_path / "m"),
      model_store.ModelFiles(b"x", "<mujoco/>", {"../../evil": b"x"}),
    )
  assert not (tmp_path / "evil").exists()
  assert not os.path.exists(tmp_path / "m" / "model.mjb")  # nothing written


# -- the server's token ---------------------------------------------------------


def test_the_training_socket_needs_the_servers_token_also_on_loopback(
  server,
):
  uri, _ = wire.address_of(f"127.0.0.1:{server.port}")
  for headers in (
    {},
    {"Authorization": "Bearer wrong"},
    {"Authorization": f"Bearer {server.secret[:-1]}"},  # a prefix
    {"Authorization": "Bearer tökén-ünïcode"},
  ):
    with pytest.raises(InvalidStatus) as refused:
      ws_connect(uri, additional_headers=headers, open_timeout=5)
    assert refused.value.response.status_code == 403
    assert b"token" in refused.value.response.body
  with pytest.raises(InvalidStatus) as refused:  # a web page, even with it
    ws_connect(
      uri,
      additional_headers={
        "Authorization": f"Bearer {server.secret}",
        "Origin": f"http://127.0.0.1:{server.port}",
      },
      open_timeout=5,
    )
  assert refused.value.response.status_code == 403


def test_a_non_ascii_token_is_a_403_not_a_server_error(tmp_path):
  server = ViewerServer(host="127.0.0.1", port=0, token="s3cret-token").run()
  try:
    import urllib.error
    import urllib.request

    for query in ("?token=t%C3%B6k%C3%A9n", "?token=%FF%FE", "?token=s3cret"):
      with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"http://127.0.0.1:{server.port}/{query}")
      assert refused.value.code == 403
      refused.value.close()  # an open response would hold the server's stop
  finally:
    server.close()


def test_the_token_file_is_this_users_only_and_gone_with_the_server(
  tmp_path, monkeypatch, puck_model
):
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
  server = ViewerServer(port=0).run()
  path = token_file.path_for(server.port)
  try:
    assert server.token_file == path and path.startswith(str(tmp_path))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    assert open(path).read() == server.secret
    viewer = braxviewer.connect(f"127.0.0.1:{server.port}", run="local")
    try:  # connect on this machine reads it: no token to pass
      viewer.init(puck_model)
      assert viewer.wait_connected(10)
    finally:
      viewer.close()
    os.chmod(path, 0o666)  # a file others could have written is not read
    assert token_file.read(server.port) is None
    os.chmod(path, 0o600)
  finally:
    server.close()
  assert not os.path.exists(path)


def test_tokens_never_appear_in_warnings_or_reconnect_lines(capfd):
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    viewer = RemoteViewer("http://127.0.0.1:9/?token=TOPSECRET", run="x")
    try:
      assert not viewer.wait_connected(1.5)
    finally:
      viewer.close()
  lost = [str(w.message) for w in caught if w.category is ServerLost]
  assert lost and "TOPSECRET" not in " ".join(lost)
  assert "token=<hidden>" in lost[0]
  assert "TOPSECRET" not in viewer.address
  out, err = capfd.readouterr()
  assert "TOPSECRET" not in out + err


# -- runs belong to their key ---------------------------------------------------


def test_a_stranger_without_the_runs_key_cannot_add_to_it(
  server, runs, puck_model, make_chunk, wait_until
):
  viewer, run = _victim(server, runs, puck_model, make_chunk, wait_until)
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    raw = Raw(server, "victim", key="guessed")
    assert raw.run == "victim-2"  # a run of its own
    raw.send(wire.Start(_info(n=2, nq=NQ + 5)))
    raw.send(wire.Chunk(make_chunk(n=2, seq=99, steps=10**9)))
    raw.send(wire.Progress(10**9, {"eval/episode_reward": 1e9}, index=10**9))
    raw.send(wire.End())
    time.sleep(1.0)
    raw.close()
  assert [c.seq for c in _kept(run)] == [0, 1, 2]
  assert max(c.env_steps for c in _kept(run)) == 60
  assert run.reports == 3 and run.info == _info() and not run.ended
  assert set(server.page.panels.curves.runs("Eval reward")) <= {
    "victim",
    "victim-2",  # the stranger's own run, apart
  }
  named = [
    str(w.message) for w in caught if "belongs to another" in str(w.message)
  ]
  assert len(named) == 1 and "attacker, pid 4242" in named[0]
  # the victim goes on streaming, curves and all
  viewer.on_chunk(make_chunk(n=2, seq=3, steps=80))
  viewer.on_progress(80, {"eval/episode_reward": 3.0})
  assert wait_until(lambda: len(_kept(run)) == 4 and run.reports == 4)


# -- numbers are bounded ----------------------------------------------------------


def _cpu() -> float:
  return time.process_time()


@pytest.mark.parametrize(
  "attack",
  ["num_envs", "nq", "links", "chunk_shape", "chunk_envs", "progress_index"],
)
def test_numbers_off_the_model_are_refused_at_once_and_the_stream_goes_on(
  server, runs, puck_model, make_chunk, wait_until, attack
):
  """The run's own connection (it has the key) sends numbers off its model:
  each is refused before it costs anything, the run hears why, and its
  stream is untouched."""
  viewer, run = _victim(server, runs, puck_model, make_chunk, wait_until)
  raw = Raw(server, "victim", key=viewer._key)
  assert raw.run == "victim"
  message = {
    "num_envs": wire.Start(_info(n=10**6)),
    "nq": wire.Start(_info(nq=NQ + 1)),
    "links": wire.Start(_info(kind="links", nq=None, num_links=10**5)),
    "chunk_shape": wire.Chunk(
      dataclasses.replace(
        make_chunk(n=2, seq=5), qpos=np.zeros((10, 2, NQ + 3))
      )
    ),
    "chunk_envs": wire.Chunk(make_chunk(n=64, seq=5)),
    "progress_index": wire.Progress(5, {"x": 1.0}, index=10**9),
  }[attack]
  with warnings.catch_warnings(record=True):
    warnings.simplefilter("always")
    t0 = _cpu()
    raw.send(message)
    refused = raw.receive(wire.Rejected)
    spent = _cpu() - t0
  raw.close()
  assert refused.why
  # refused, not worked through: building 10**6 envs would take hours
  print(f"{attack}: refused in {spent * 1000:.0f} ms of CPU")
  assert spent < 0.1, f"{spent:.3f} s of CPU to refuse {attack}"
  assert run.info == _info() and len(_kept(run)) == 3 and run.reports == 3
  viewer.on_chunk(make_chunk(n=2, seq=3, steps=80))
  viewer.on_progress(80, {"eval/episode_reward": 3.0})
  assert wait_until(lambda: len(_kept(run)) == 4 and run.reports == 4)
  assert server.stats()["refused"]


def test_the_run_hears_once_why_the_server_refused_its_stream(
  server, runs, puck_model, wait_until
):
  viewer = runs(f"127.0.0.1:{server.port}", run="big")
  viewer.init(puck_model)
  assert viewer.wait_connected(10)
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    for _ in range(3):
      viewer.on_stream_start(_info(n=trust.MAX_ENVS + 1))
    assert wait_until(lambda: "start" in viewer._rejected, timeout=10)
    time.sleep(0.5)
  said = [str(w.message) for w in caught if w.category is ServerRefused]
  assert len(said) == 1 and "num_envs" in said[0], said


# -- a server that never answers ---------------------------------------------------


def test_a_server_that_asks_for_sync_and_never_answers_holds_training_once(
  puck_model, make_chunk, wait_until
):
  fake = SilentServer()
  viewer = RemoteViewer(f"127.0.0.1:{fake.port}", run="r", token="x" * 16)
  try:
    viewer.init(puck_model)
    assert viewer.wait_connected(10)
    assert wait_until(lambda: viewer.mode == Mode.SYNC)
    viewer.on_stream_start(_info())
    with warnings.catch_warnings(record=True) as caught:
      warnings.simplefilter("always")
      t0 = time.monotonic()
      viewer.on_chunk(make_chunk(n=2, seq=0))
      first = time.monotonic() - t0
      t1 = time.monotonic()
      for i in range(1, 20):
        viewer.on_chunk(make_chunk(n=2, seq=i))
      rest = time.monotonic() - t1
    slow = [w for w in caught if w.category is ServerSlow]
    assert len(slow) == 1, [str(w.message) for w in caught]
    assert client_module.SYNC_SILENCE_S <= first < 30
    assert rest < client_module.SYNC_SILENCE_S  # no more waiting
    assert wait_until(lambda: fake.chunks == 20)
  finally:
    viewer.close()
    fake.close()


# -- runs that never come back ------------------------------------------------------


def test_runs_with_no_connection_expire_and_keep_their_recordings(
  tmp_path, runs, puck_model, make_chunk, wait_until
):
  server = ViewerServer(port=0, record_dir=str(tmp_path), run_ttl_s=1.0).run()
  try:
    viewer = runs(f"127.0.0.1:{server.port}", run="short")
    viewer.init(puck_model)
    assert viewer.wait_connected(10)
    viewer.on_stream_start(_info())
    assert wait_until(lambda: viewer.mode == Mode.LIVE)
    viewer.on_chunk(make_chunk(n=2, seq=0))
    assert wait_until(lambda: len(_kept(server.runs.get("short"))) == 1)
    viewer.close()  # gone without an end: disconnected
    assert wait_until(lambda: server.stats()["runs"] == {}, timeout=10)
    assert server.page.panels.curves.runs("Eval reward") == ()
  finally:
    server.close()
  assert os.path.isdir(tmp_path / "short")
  from braxviewer.record.reader import Recording

  assert len(Recording(str(tmp_path / "short")).chunks("train")) == 1


def test_serve_takes_a_token_and_a_ttl_and_refuses_bad_ones(spawn):
  child = spawn(
    [
      "-m",
      "braxviewer",
      "serve",
      "--port",
      "0",
      "--token",
      "my-long-token",
      "--run-ttl",
      "60",
      "--exit-after",
      "1",
    ]
  )
  assert child.finish(timeout=120) == 0, child.stderr
  assert "my-long-token" not in child.stdout.split("viewer running at")[0]
  for bad in (
    ["--token", "short"],
    ["--token", "tö ken ünïcode"],
    ["--run-ttl", "0"],
  ):
    child = spawn(["-m", "braxviewer", "serve", "--port", "0", *bad])
    assert child.finish(timeout=120) == 2, child.stderr
    assert "Traceback" not in child.stderr
    assert len(child.stderr.strip().splitlines()) <= 2, child.stderr


# -- the page shows what runs send as text ------------------------------------------


def test_names_a_run_sends_are_shown_as_text_not_markup(
  server, runs, puck_model, page, open_page, wait_until
):
  evil = '<img src="x" onerror="window.pwned=1"><b>bold</b> **md**'
  viewer = runs(f"127.0.0.1:{server.port}", run=evil)
  viewer.init(puck_model)
  assert viewer.wait_connected(10)
  viewer.on_phase('<img src="y" onerror="window.pwned=2">compiling')
  assert wait_until(lambda: server.runs.get(evil) is not None)
  open_page(page, server.url)
  page.get_by_text("<b>bold</b> **md**").first.wait_for(timeout=60_000)
  # a phase the page does not know is no state: the status names its own
  page.get_by_text("Training: waiting").first.wait_for(timeout=60_000)
  assert "pwned=2" not in page.inner_text("body")
  assert (
    page.evaluate("document.querySelectorAll('img[src=x], img[src=y]').length")
    == 0
  )
  assert page.evaluate("window.pwned") is None
  bold = page.evaluate(
    "[...document.querySelectorAll('b, strong')].map(e => e.textContent)"
  )
  assert "bold" not in bold
