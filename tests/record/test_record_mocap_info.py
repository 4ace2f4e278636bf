"""Recordings keep the mocap state and the state.info entries of chunks, and
read recordings made before they were streamed."""

from __future__ import annotations

import dataclasses
import json
import os
import time

import numpy as np

from braxviewer.core.frames import FrameChunk
from braxviewer.core.timeline import RecentChunks, chunk_nbytes
from braxviewer.record import FORMAT_VERSION, Recorder, open_recording
from braxviewer.record import format as fmt
from braxviewer.testing.factories import stream_info

XML = """<mujoco><worldbody>
<body><joint type="hinge" axis="0 1 0"/>
<geom type="capsule" fromto="0 0 0 0 0 1" size=".05"/></body>
<body name="goal" mocap="true" pos="1 0 0"><geom type="sphere" size=".1"/></body>
</worldbody></mujoco>"""

INFO = stream_info(
  3,
  num_train_envs=8,
  nq=1,
  dt=0.05,
  chunk_length=4,
  reward_terms=("term",),
  nmocap=1,
  info_keys=("command", "level"),
  info_shapes=((3,), ()),
)


def chunk(i: int, t: int = 4, n: int = 3, source: str = "train") -> FrameChunk:
  rng = np.random.default_rng(i)
  f = lambda *s: rng.normal(size=s).astype(np.float32)  # noqa: E731
  quat = f(t, n, 1, 4)
  quat[0, 0, 0, 1] = np.nan  # bits kept, NaN included
  return FrameChunk(
    seq=i,
    source=source,
    env_steps=10 * (i + 1),
    dt=0.05,
    reward=f(t, n),
    done=np.zeros((t, n), np.float32),
    truncation=np.zeros((t, n), np.float32),
    metrics={"term": f(t, n)},
    wall_time=time.time(),
    qpos=f(t, n, 1),
    mocap_pos=f(t, n, 1, 3),
    mocap_quat=quat,
    info={"command": f(t, n, 3), "level": f(t, n)},
  )


def assert_same(a: FrameChunk, b: FrameChunk) -> None:
  for field in dataclasses.fields(FrameChunk):
    x, y = getattr(a, field.name), getattr(b, field.name)
    if isinstance(x, np.ndarray):
      assert x.dtype == y.dtype and x.shape == y.shape, field.name
      assert x.tobytes() == y.tobytes(), field.name
    elif isinstance(x, dict):
      assert list(x) == list(y), field.name
      for k in x:
        assert x[k].tobytes() == y[k].tobytes(), (field.name, k)
    else:
      assert x == y, field.name


def test_replayed_chunks_equal_the_recorded_ones_mocap_and_info_included(
  tmp_path,
):
  rec = Recorder(str(tmp_path / "r"), env=XML, mode="sync")
  rec.on_stream_start(INFO)
  sent = [chunk(i) for i in range(3)] + [chunk(9, source="eval")]
  for c in sent:
    rec.on_chunk(c)
  rec.on_stream_end()
  rec.close()
  with open_recording(rec.path) as r:
    assert r.version == FORMAT_VERSION == 2
    assert r.stream_info == INFO  # info keys and shapes as tuples again
    got = list(r.chunks("train")) + list(r.chunks("eval"))
    assert len(got) == len(sent)
    for a, b in zip(sent, got):
      assert_same(a, b)
    assert list(got[0].info) == ["command", "level"]


def test_chunks_without_mocap_or_info_come_back_without(tmp_path):
  plain = dataclasses.replace(
    chunk(0), mocap_pos=None, mocap_quat=None, info={}
  )
  meta, arrays = fmt.chunk_record(plain)
  # recorded exactly as before mocap and info were streamed
  assert "info" not in meta
  assert sorted(arrays) == [
    "done",
    "metrics/term",
    "qpos",
    "reward",
    "truncation",
  ]
  rec = Recorder(str(tmp_path / "r"), env=XML, mode="sync")
  rec.on_chunk(plain)
  rec.close()
  with open_recording(rec.path) as r:
    back = r.chunks()[0]
    assert back.mocap_pos is None and back.mocap_quat is None
    assert back.info == {}
    assert_same(plain, back)


def test_an_older_recording_reads_with_no_mocap_and_no_info(tmp_path):
  """A version-2 recording written before mocap and info were streamed:
  its header's stream info lacks the new fields, its chunks the arrays."""
  rec = Recorder(str(tmp_path / "r"), env=XML, mode="sync")
  old_info = {
    k: v
    for k, v in dataclasses.asdict(INFO).items()
    if k not in ("nmocap", "info_keys", "info_shapes")
  }
  rec._put(("start", old_info), block=True)
  old = dataclasses.replace(chunk(1), mocap_pos=None, mocap_quat=None, info={})
  rec.on_chunk(old)
  rec.close()
  header = json.load(open(os.path.join(rec.path, fmt.HEADER_FILE)))
  assert "info_keys" not in header["stream_info"]
  with open_recording(rec.path) as r:
    info = r.stream_info
    assert info is not None
    assert (info.nmocap, info.info_keys, info.info_shapes) == (0, (), ())
    assert r.chunks()[0].info == {} and r.chunks()[0].mocap_pos is None


def test_live_history_counts_the_bytes_of_mocap_and_info():
  c = chunk(0)
  extra = c.mocap_pos.nbytes + c.mocap_quat.nbytes
  extra += sum(v.nbytes for v in c.info.values())
  plain = dataclasses.replace(c, mocap_pos=None, mocap_quat=None, info={})
  assert chunk_nbytes(c) == chunk_nbytes(plain) + extra
  recent = RecentChunks(max_chunks=4)
  recent.append(c)
  assert recent.nbytes == chunk_nbytes(c)
  assert_same(recent.chunks()[0], c)
