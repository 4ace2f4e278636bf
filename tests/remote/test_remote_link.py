"""A viewer server and the runs that connect to it, without JAX.

Runs here are ``braxviewer.connect`` viewers fed by hand (the trainer's
calls: init, on_stream_start, on_chunk, on_progress, on_stream_end), so the
server's behaviour is tested in seconds: names, timelines, modes, sync,
reconnects, memory bounds, recording, bad clients. Trainings connecting to
a server in another process are in test_remote_train.py.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
import warnings

import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from braxviewer.core.protocol import Mode, StreamInfo
from braxviewer.record.reader import Recording
from braxviewer.remote import client as client_module
from braxviewer.remote import wire
from braxviewer.remote.client import RemoteViewer, ServerLost
from braxviewer.remote.server import ViewerServer
from braxviewer.testing.factories import stream_info

NQ = 8  # the puck model's qpos width (conftest.puck_model)


def _info(n: int = 2) -> StreamInfo:
  return stream_info(n, nq=NQ, reward_terms=("r",))


def _address(server: ViewerServer) -> str:
  return f"127.0.0.1:{server.port}"


def _start(viewer: RemoteViewer, model, n: int = 2) -> None:
  viewer.init(model)
  assert viewer.wait_connected(10)
  viewer.on_stream_start(_info(n))


def _stream(viewer, make_chunk, count: int, first: int = 0, n: int = 2):
  for i in range(first, first + count):
    viewer.on_chunk(make_chunk(n=n, seq=i, steps=(i + 1) * 20))
    viewer.on_progress((i + 1) * 20, {"eval/episode_reward": float(i)})


# -- the wire --------------------------------------------------------------------


def test_every_message_survives_the_wire_bit_for_bit(make_chunk):
  chunk = dataclasses.replace(
    make_chunk(n=3, seq=7, steps=99),
    mocap_pos=np.random.rand(10, 3, 1, 3),
    mocap_quat=np.random.rand(10, 3, 1, 4),
    info={"command": np.random.rand(10, 3, 3).astype(np.float32)},
  )
  back = wire.decode(wire.encode(wire.Chunk(chunk, ack=True)))
  assert isinstance(back, wire.Chunk) and back.ack
  for field in ("qpos", "reward", "done", "mocap_pos", "mocap_quat"):
    assert np.array_equal(getattr(back.chunk, field), getattr(chunk, field))
    assert getattr(back.chunk, field).dtype == getattr(chunk, field).dtype
  assert np.array_equal(back.chunk.info["command"], chunk.info["command"])
  assert (back.chunk.seq, back.chunk.env_steps) == (7, 99)
  info = dataclasses.replace(
    _info(), info_keys=("command",), info_shapes=((3,),)
  )
  for message in (
    wire.Hello("run", True, "host", 12, "key"),
    wire.Start(info, 1, 2, True),
    wire.Progress(5, {"eval/episode_reward": 1.5}),
    wire.Model(b"\x00\x01", "<mujoco/>", {"a.png": b"png"}, "note"),
    wire.Phase("training"),
    wire.TrainerMode("sync"),
    wire.End(),
    wire.Welcome("run-2", True),
    wire.Control("live", 1, 3),
    wire.Shown("eval", 4),
    wire.Holding("train", 9),
    wire.Rejected("start", "num_envs 5 is outside 1..4."),
  ):
    assert wire.decode(wire.encode(message)) == message


def test_what_is_not_a_message_is_refused_with_a_reason():
  for data in (b"", b"\xc1garbage", "text", b"\x93\x01\x02\x03"):
    with pytest.raises(wire.WireError):
      wire.decode(data)
  bad_version = wire.encode(wire.Welcome("x", version=99))
  with pytest.raises(wire.WireError, match="same braxviewer version"):
    wire.decode(bad_version)


def test_server_addresses_are_read_as_users_write_them():
  assert wire.address_of("127.0.0.1:8000") == (
    f"ws://127.0.0.1:8000{wire.PATH}",
    None,
  )
  assert wire.address_of("http://node7:8001/?token=abc") == (
    f"ws://node7:8001{wire.PATH}",
    "abc",
  )
  assert wire.address_of("[::1]:9")[0] == f"ws://[::1]:9{wire.PATH}"
  for bad in ("localhost", "127.0.0.1:port", "ftp://x:1", ":80"):
    with pytest.raises(ValueError, match="host:port"):
      wire.address_of(bad)


# -- runs on a server --------------------------------------------------------------


def test_a_connected_run_streams_its_chunks_and_curves_to_the_server(
  server, runs, puck_model, make_chunk, wait_until
):
  viewer = runs(_address(server), run="alpha")
  _start(viewer, puck_model)
  assert wait_until(lambda: viewer.mode == Mode.LIVE, timeout=10)
  _stream(viewer, make_chunk, 12)
  viewer.on_stream_end()
  assert wait_until(lambda: server.stats()["runs"] == {"alpha": "ended"})
  assert server.shown_run == "alpha"
  timeline = server.playback.timeline
  assert [c.seq for c in timeline] == list(range(12))
  assert timeline[-1].env_steps == 240
  assert server.page is not None
  assert server.page.panels.curves.runs("Eval reward") == ("alpha",)
  assert server.page.panels.curves.num_points("Eval reward") == 12
  assert viewer.stats.chunks_sent == 12 and viewer.stats.chunks_dropped == 0


def test_two_runs_at_once_keep_their_own_timelines_and_share_the_curves(
  server, runs, puck_model, make_chunk, wait_until
):
  a = runs(_address(server), run="a")
  b = runs(_address(server), run="b")
  _start(a, puck_model, n=2)
  _start(b, puck_model, n=3)
  assert wait_until(lambda: b.mode == Mode.LIVE and a.mode == Mode.LIVE)
  _stream(a, make_chunk, 5)
  _stream(b, make_chunk, 9, n=3)
  assert wait_until(
    lambda: server.page.panels.curves.num_points("Eval reward") == 14
  )
  assert set(server.page.panels.curves.runs("Eval reward")) == {"a", "b"}
  kept = {"a": (5, 2), "b": (9, 3)}  # chunks, envs
  first = server.shown_run  # the run that connected first
  assert first in kept
  assert wait_until(lambda: len(server.playback.timeline) == kept[first][0])
  other = "b" if first == "a" else "a"
  server.show_run(other)
  assert server.shown_run == other
  assert len(server.playback.timeline) == kept[other][0]
  assert server.playback.timeline[-1].num_envs == kept[other][1]
  assert wait_until(lambda: server.page.num_envs == kept[other][1], 10)
  with pytest.raises(ValueError, match="no run named"):
    server.show_run("nope")


def test_a_name_taken_gets_a_suffix_unless_the_runs_key_is_given(
  server, runs, puck_model, wait_until, monkeypatch
):
  # two scripts started the same second: the same default name
  monkeypatch.setattr(client_module, "default_run_name", lambda: "script-1")
  first = runs(_address(server))
  second = runs(_address(server))
  for v in (first, second):
    v.init(puck_model)
    assert v.wait_connected(10)
  names = {first.run_name, second.run_name}
  assert len(names) == 2 and any(n.endswith("-2") for n in names)
  # processes of one multi-host job share the run's key: they join it
  p0 = runs(_address(server), run="job", run_key="job-secret")
  p1 = runs(_address(server), run="job", run_key="job-secret")
  for v in (p0, p1):
    v.init(puck_model)
    assert v.wait_connected(10)
  assert wait_until(lambda: len(server.runs.get("job").links) == 2)
  assert p0.run_name == p1.run_name == "job"
  # the same name without the key: a run of its own, never the job's
  other = runs(_address(server), run="job")
  other.init(puck_model)
  assert other.wait_connected(10)
  assert other.run_name == "job-2"
  assert len(server.runs.get("job").links) == 2


def test_the_page_sets_the_shown_runs_mode_and_the_others_stream_live(
  server, runs, puck_model, wait_until
):
  a = runs(_address(server), run="a")
  b = runs(_address(server), run="b")
  _start(a, puck_model)
  _start(b, puck_model)
  server.show_run("a")  # whichever connected first was shown
  server.set_mode("off")
  assert wait_until(lambda: a.mode == Mode.OFF)
  assert wait_until(lambda: b.mode == Mode.LIVE)  # its own timeline
  server.set_mode("sync")
  assert wait_until(lambda: a.mode == Mode.SYNC)
  time.sleep(0.5)
  assert b.mode == Mode.LIVE  # a run not shown never waits on the page
  server.set_stream_source(0, 1)
  assert wait_until(lambda: a.stream_source == (0, 1))
  with pytest.raises(ValueError, match="processes 0..0"):
    server.set_stream_source(3, 0)


def test_a_sync_chunk_returns_once_the_server_showed_it(
  server, runs, puck_model, make_chunk, wait_until
):
  viewer = runs(_address(server), run="s", num_envs=2)
  _start(viewer, puck_model)
  server.set_mode("sync")
  assert wait_until(lambda: viewer.mode == Mode.SYNC)
  assert wait_until(lambda: server.playback.running and server.page.num_envs)
  t0 = time.monotonic()
  for i in range(3):
    viewer.on_chunk(make_chunk(n=2, seq=i, steps=i + 1, dt=0.05))
  # 3 chunks of 10 frames at 0.05 s: shown at their pace, not at once;
  # no page is open, so sync falls back to live after a few seconds at most
  assert time.monotonic() - t0 < 30
  assert wait_until(lambda: len(server.playback.timeline) == 3)


def test_a_run_outlives_its_server_and_resumes_on_a_new_one(
  runs, puck_model, make_chunk, wait_until
):
  server = ViewerServer(port=0).run()
  port = server.port
  viewer = runs(f"127.0.0.1:{port}", run="long")
  _start(viewer, puck_model)
  assert wait_until(lambda: viewer.mode == Mode.LIVE)
  _stream(viewer, make_chunk, 3)
  assert wait_until(lambda: len(server.playback.timeline) == 3)
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    server.close()
    assert wait_until(lambda: not viewer.connected, timeout=10)
    assert viewer.mode == Mode.OFF  # nothing leaves the device meanwhile
    _stream(viewer, make_chunk, 4, first=3)  # dropped, counted
    time.sleep(2.0)  # several failed retries
    again = ViewerServer(port=port).run()
    try:
      assert wait_until(lambda: viewer.connected, timeout=20)
      assert wait_until(lambda: viewer.mode == Mode.LIVE, timeout=10)
      _stream(viewer, make_chunk, 5, first=7)
      assert wait_until(lambda: len(again.playback.timeline) == 5)
      # the same run: its model and stream were announced again
      assert again.shown_run == "long"
      assert again.runs.get("long").info == _info()
      # the whole curve: reports before the server died (sent again),
      # while it was away (queued) and after, each once
      assert wait_until(
        lambda: again.page.panels.curves.num_points("Eval reward") == 12
      )
      time.sleep(0.5)
      assert again.page.panels.curves.num_points("Eval reward") == 12
    finally:
      again.close()
  lost = [w for w in caught if issubclass(w.category, ServerLost)]
  assert len(lost) == 1, [str(w.message) for w in caught]
  assert viewer.stats.connects == 2
  assert viewer.stats.chunks_dropped == 4


def test_the_outbox_never_grows_without_bound_while_the_server_is_down(
  make_chunk,
):
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]  # nothing listens there
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", ServerLost)
    viewer = RemoteViewer(f"127.0.0.1:{port}", max_queue_bytes=1 << 16)
    try:
      for i in range(20_000):
        viewer.on_progress(i, {"eval/episode_reward": float(i), "x": 1.0})
      for i in range(50):
        viewer.on_chunk(make_chunk(n=16, seq=i))
      assert viewer.stats.queued_bytes <= 1 << 16
      assert viewer.stats.progress_dropped > 15_000
      assert viewer.stats.chunks_dropped == 50  # off without a server
      assert viewer.mode == Mode.OFF
      # the end of a stream is never pushed out: the server must hear it
      queued, dropped = len(viewer._outbox), viewer.stats.progress_dropped
      viewer.on_stream_end()
      assert len(viewer._outbox) == queued + 1
      assert viewer.stats.progress_dropped == dropped
    finally:
      t0 = time.monotonic()
      viewer.close()
      assert time.monotonic() - t0 < 10  # closing does not wait for a server


def test_the_server_records_each_run_apart(
  tmp_path, runs, puck_model, make_chunk, wait_until
):
  server = ViewerServer(port=0, record_dir=str(tmp_path)).run()
  try:
    a = runs(_address(server), run="run a")
    b = runs(_address(server), run="b")
    _start(a, puck_model)
    _start(b, puck_model)
    assert wait_until(lambda: a.mode == Mode.LIVE and b.mode == Mode.LIVE)
    _stream(a, make_chunk, 6)
    _stream(b, make_chunk, 4)
    for v in (a, b):
      v.on_stream_end()
    assert wait_until(lambda: set(server.stats()["runs"].values()) == {"ended"})
  finally:
    server.close()
  assert sorted(os.listdir(tmp_path)) == ["b", "run_a"]
  rec_a = Recording(str(tmp_path / "run_a"))
  assert [c.seq for c in rec_a.chunks("train")] == list(range(6))
  assert rec_a.model().nq == NQ
  assert len(Recording(str(tmp_path / "b")).chunks("train")) == 4


def test_an_ended_run_stays_until_forgotten(
  server, runs, puck_model, make_chunk, wait_until
):
  a = runs(_address(server), run="a")
  _start(a, puck_model)
  assert wait_until(lambda: a.mode == Mode.LIVE)
  _stream(a, make_chunk, 3)
  a.on_stream_end()
  a.close()
  assert wait_until(lambda: server.stats()["runs"] == {"a": "ended"})
  assert len(server.playback.timeline) == 3  # still reviewable
  server.forget_run("a")
  assert server.stats()["runs"] == {}
  assert server.page.panels.curves.runs("Eval reward") == ()


def test_a_stranger_on_the_training_socket_is_closed_and_the_server_goes_on(
  server, runs, puck_model, make_chunk, wait_until
):
  uri, _ = wire.address_of(_address(server))
  bearer = {"Authorization": f"Bearer {server.secret}"}
  with ws_connect(uri, additional_headers=bearer) as ws:
    ws.send(b"\x00not a braxviewer run")
    with pytest.raises(ConnectionClosed) as closed:
      ws.recv(timeout=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
  with ws_connect(uri, additional_headers=bearer) as ws:
    ws.send(wire.encode(wire.Hello("x", True, "h", 1)))
    assert isinstance(wire.decode(ws.recv(timeout=5)), wire.Welcome)
    ws.send(b"garbage after hello")
  viewer = runs(_address(server), run="fine")
  _start(viewer, puck_model)
  assert wait_until(lambda: viewer.mode == Mode.LIVE)
  _stream(viewer, make_chunk, 2)
  server.show_run("fine")
  assert wait_until(lambda: len(server.playback.timeline) == 2)


def test_a_python_loop_pushes_to_the_server_like_to_a_page(
  server, runs, puck_model, wait_until
):
  viewer = runs(_address(server), run="loop", num_envs=3)
  viewer.init(puck_model)
  assert wait_until(lambda: viewer.mode == Mode.LIVE)  # pushes need a page
  batch = 8
  for step in range(20):
    qpos = np.full((batch, NQ), step, np.float32)
    viewer.push_arrays(
      qpos=qpos,
      reward=np.ones(batch),
      done=np.zeros(batch),
      chunk_length=5,
      dt=0.05,
    )
    viewer.log((step + 1) * batch, {"eval/episode_reward": float(step)})
  viewer.flush()
  assert wait_until(lambda: len(server.playback.timeline) == 4)
  chunks = list(server.playback.timeline)
  assert [c.num_envs for c in chunks] == [3] * 4
  assert np.array_equal(chunks[-1].qpos[:, 0, 0], [15, 16, 17, 18, 19])
  assert wait_until(
    lambda: server.page.panels.curves.num_points("Eval reward") == 20
  )


def test_serve_refuses_a_bad_port_with_one_line(spawn):
  child = spawn(["-m", "braxviewer", "serve", "--port", "70000"])
  assert child.finish(timeout=60) == 2
  assert "port must be in 0..65535" in child.stderr
  assert "Traceback" not in child.stderr
