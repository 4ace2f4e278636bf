"""``viewer.push`` from plain arrays: chunks, steps, modes, logs, errors and
the web viewer's timeline. No JAX (loops over jitted envs:
test_push_loops.py)."""

from __future__ import annotations

import types
from typing import Any

import mujoco
import numpy as np
import pytest

from braxviewer import HeadlessViewer, WebViewerBatched
from braxviewer.core.protocol import Mode
from braxviewer.core.streamer import ViewerFailure
from braxviewer.testing.synthetic import PUCK_XML
from braxviewer.viewer.batch import state_arrays
from braxviewer.viewer.push import Pusher

NQ = 8  # PUCK_XML's


def _batch(rng: np.random.Generator, b: int = 5) -> dict:
  return dict(
    qpos=rng.normal(size=(b, NQ)).astype(np.float32),
    reward=rng.normal(size=b).astype(np.float32),
    done=(rng.random(b) < 0.2),
    truncation=np.zeros(b, np.float32),
    metrics={"reward/up": rng.normal(size=b)},
    mocap_pos=rng.normal(size=(b, 1, 3)),
    mocap_quat=rng.normal(size=(b, 1, 4)),
    info={
      "rng": np.zeros((b, 2), np.uint32),  # a key: never chosen
      "phase": rng.normal(size=b),
      "command": rng.normal(size=(b, 3)),
      "steps": np.arange(b),  # the wrappers' bookkeeping: never chosen
    },
  )


def _pushes(viewer: Any, steps: int, b: int = 5, **options: Any) -> list:
  rng = np.random.default_rng(0)
  pushed = []
  for _ in range(steps):
    batch = _batch(rng, b)
    pushed.append(batch)
    viewer.push_arrays(**batch, **options)
  return pushed


def test_push_arrays_makes_chunks_of_the_first_envs_in_order():
  viewer = HeadlessViewer(num_envs=3)
  pushed = _pushes(viewer, 10, dt=0.02, chunk_length=4)
  assert [c.num_steps for c in viewer.chunks] == [4, 4]
  viewer.close()
  chunks = list(viewer.chunks)
  assert [c.seq for c in chunks] == [0, 1, 2]
  assert [c.num_steps for c in chunks] == [4, 4, 2]
  assert [c.env_steps for c in chunks] == [20, 40, 50]  # 5 envs per push
  assert {c.source for c in chunks} == {"train"} and viewer.ended
  info = viewer.stream_info
  assert info is not None and info.num_envs == 3 and info.num_train_envs == 5
  assert (info.kind, info.nq, info.dt, info.chunk_length) == (
    "qpos",
    NQ,
    0.02,
    4,
  )
  assert info.info_keys == ("command", "phase")  # command first, no rng
  assert info.info_shapes == ((3,), ()) and info.nmocap == 1
  qpos = np.concatenate([c.qpos for c in chunks])
  np.testing.assert_array_equal(qpos, [p["qpos"][:3] for p in pushed])
  done = np.concatenate([c.done for c in chunks])
  np.testing.assert_array_equal(done, [p["done"][:3] for p in pushed])
  command = np.concatenate([c.info["command"] for c in chunks])
  np.testing.assert_allclose(
    command, [p["info"]["command"][:3] for p in pushed], rtol=1e-6
  )
  mocap = np.concatenate([c.mocap_pos for c in chunks])  # type: ignore
  assert mocap.shape == (10, 3, 1, 3)
  assert list(chunks[0].metrics) == ["reward/up"]


def test_pushed_arrays_are_copied_and_env_steps_can_be_given():
  viewer = HeadlessViewer(num_envs=2)
  qpos = np.zeros((2, NQ), np.float32)
  for i in range(3):
    qpos[:] = i  # the loop reuses its buffer
    viewer.push_arrays(
      qpos=qpos, reward=[0.0, 1.0], done=[0, 0], dt=0.1, env_steps=7 * i
    )
  viewer.flush()
  (chunk,) = viewer.chunks
  assert chunk.env_steps == 14 and chunk.reward.dtype == np.float32
  np.testing.assert_array_equal(chunk.qpos[:, 0, 0], [0, 1, 2])  # type: ignore
  assert np.all(chunk.truncation == 0) and chunk.mocap_pos is None


class _Untouchable:
  """An array a push must not read: only its shape is known."""

  def __init__(self, *shape: int):
    self.shape, self.dtype = shape, np.dtype(np.float32)

  def __getitem__(self, key: Any) -> Any:
    raise AssertionError("off mode read an array")

  def __array__(self, *args: Any, **kwargs: Any) -> Any:
    raise AssertionError("off mode copied an array")


def test_off_mode_reads_and_sends_nothing_but_counts_steps():
  viewer = HeadlessViewer(num_envs=2, mode="off")
  for _ in range(5):
    viewer.push_arrays(
      qpos=_Untouchable(4, NQ),
      reward=_Untouchable(4),
      done=_Untouchable(4),
      dt=0.01,
      chunk_length=2,
    )
  assert not viewer.chunks and viewer.trainer_modes == [Mode.OFF]
  assert viewer.stream_info is not None  # the stream started
  assert viewer.pushes.env_steps == 20
  viewer.set_mode("live")
  plain = dict(qpos=np.zeros((4, NQ)), reward=np.zeros(4), done=np.zeros(4))
  for _ in range(3):
    viewer.push_arrays(**plain)
  assert viewer.trainer_modes == [Mode.OFF, Mode.LIVE]
  assert [c.env_steps for c in viewer.chunks] == [28]  # one full chunk
  viewer.set_mode("off")  # the frame pushed while live is sent
  viewer.push_arrays(**plain)
  assert [c.env_steps for c in viewer.chunks] == [28, 32]


def test_log_feeds_the_curves_with_finite_numbers():
  viewer = HeadlessViewer()
  viewer.log(0, {"loss": np.float32(0.5)})  # before any push
  viewer.log(100, {"reward": np.array([1.0, 3.0]), "nan": float("nan")})
  assert viewer.progress == [(0, {"loss": 0.5}), (100, {"reward": 2.0})]
  with pytest.raises(ValueError, match="'bad' is not a number"):
    viewer.log(200, {"bad": "high"})
  with pytest.raises(ValueError, match="env_steps"):
    viewer.log(-1, {})
  with pytest.raises(ValueError, match="mapping"):
    viewer.log(1, [("a", 1.0)])  # type: ignore[arg-type]


def test_a_smaller_batch_than_asked_shows_fewer_envs():
  viewer = HeadlessViewer(num_envs=8)
  _pushes(viewer, 2, b=3, dt=0.01)
  viewer.flush()
  assert viewer.stream_info is not None
  assert viewer.stream_info.num_envs == 3 and viewer.chunks[0].num_envs == 3
  with pytest.raises(ValueError, match="batch has 2 envs"):
    _pushes(viewer, 1, b=2)


def test_bad_pushes_are_refused_clearly():
  viewer = HeadlessViewer(num_envs=2)
  with pytest.raises(ValueError, match="neither `pipeline_state`"):
    viewer.push(types.SimpleNamespace(reward=np.zeros(4)), dt=0.1)
  with pytest.raises(ValueError, match="dt="):
    _pushes(viewer, 1)
  with pytest.raises(ValueError, match=r"reward needs shape \(batch,\)"):
    viewer.push_arrays(qpos=np.zeros((4, 2)), reward=np.zeros((4, 1)), done=0)
  env = types.SimpleNamespace(
    mj_model=mujoco.MjModel.from_xml_string(PUCK_XML), dt=0.05
  )
  with pytest.raises(ValueError, match="nq=8"):
    viewer.push_arrays(
      qpos=np.zeros((4, 7)), reward=np.zeros(4), done=np.zeros(4), env=env
    )
  with pytest.raises(ValueError, match="info_keys: 'nope'"):
    HeadlessViewer(info_keys=("nope",)).push_arrays(
      **_batch(np.random.default_rng(0)), dt=0.1
    )
  _pushes(viewer, 1, env=env)  # a good start: dt from the env
  assert viewer.stream_info is not None and viewer.stream_info.dt == 0.05
  batch = _batch(np.random.default_rng(1))
  with pytest.raises(ValueError, match=r"qpos has shape \(5, 7\)"):
    viewer.push_arrays(**{**batch, "qpos": np.zeros((5, 7))})
  with pytest.raises(ValueError, match="the metrics are"):
    viewer.push_arrays(**{**batch, "metrics": {}})
  with pytest.raises(ValueError, match="info 'command'"):
    viewer.push_arrays(**{**batch, "info": {"phase": np.zeros(5)}})
  with pytest.raises(ValueError, match="chunk_length is 50"):
    viewer.push_arrays(**batch, chunk_length=3)
  viewer.close()
  assert len(viewer.chunks) == 1  # the good push, sent at close
  for call in (
    lambda: viewer.push_arrays(**batch),
    lambda: viewer.log(1, {}),
    viewer.flush,
  ):
    with pytest.raises(RuntimeError, match="closed"):
      call()


def test_a_failing_viewer_never_stops_the_loop():
  class Broken(HeadlessViewer):
    def on_chunk(self, chunk):
      raise OSError("disk full")

  viewer = Broken(num_envs=2)
  with pytest.warns(ViewerFailure, match="disk full"):
    _pushes(viewer, 6, dt=0.1, chunk_length=2)
  _pushes(viewer, 2)  # streaming is off now; pushes go on quietly
  assert viewer.pushes.env_steps == 40


def test_state_arrays_read_a_playground_like_state_without_copying():
  b = 3
  data = types.SimpleNamespace(
    qpos=np.zeros((b, 2)),
    mocap_pos=np.zeros((b, 2, 3)),
    mocap_quat=np.zeros((b, 2, 4)),
  )
  state = types.SimpleNamespace(
    data=data,
    reward=np.zeros(b),
    done=np.zeros(b),
    metrics={
      "term": np.ones(b),
      "scalar": np.float32(1),
      "wide": np.ones((b, 2)),
    },
    info={"truncation": np.ones(b), "goal": {"xy": np.ones((b, 2))}},
  )
  arrays = state_arrays(state)
  assert arrays["qpos"] is data.qpos and arrays["mocap_pos"] is data.mocap_pos
  assert list(arrays["metrics"]) == ["term"]  # per-env 1-D terms only
  assert set(arrays["info"]) == {"truncation", "goal/xy"}
  viewer = HeadlessViewer(num_envs=2)
  pusher = Pusher(viewer)
  pusher.push(state, dt=0.1)
  pusher.flush()
  (chunk,) = viewer.chunks
  assert chunk.nmocap == 2 and list(chunk.info) == ["goal/xy"]
  assert np.all(chunk.truncation == 1)


def test_a_web_viewer_gets_pushed_chunks_in_its_timeline(wait_until):
  viewer = WebViewerBatched(num_envs=2, port=0, env_offset=(1.0, 1.0, 1.0))
  try:
    viewer.init(PUCK_XML)
    assert wait_until(lambda: viewer.mode == Mode.LIVE, timeout=10)
    _pushes(viewer, 25, b=4, dt=0.01, chunk_length=10)
    viewer.flush()
    assert wait_until(lambda: viewer.stats()["chunks_received"] == 3)
    assert [c.seq for c in viewer.playback.timeline] == [0, 1, 2]
    assert viewer.stats()["env_steps"] == 100 and viewer.failed is None
    viewer.log(100, {"eval/episode_reward": 1.5})
  finally:
    viewer.close()
  with pytest.raises(RuntimeError, match="closed"):
    _pushes(viewer, 1, b=4)
