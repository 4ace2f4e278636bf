"""The recorder and format on synthetic chunks: never blocks, never raises,
bounded disk use by thinning, fan-out isolation, portable model files."""

from __future__ import annotations

import os
import threading
import time
import warnings

import mujoco
import numpy as np

from braxviewer.core.frames import FrameChunk
from braxviewer.core.protocol import Mode
from braxviewer.record import (
  Recorder,
  RecordingWarning,
  model_store,
  open_recording,
)
from braxviewer.record import format as fmt

XML = """<mujoco><worldbody><light pos="0 0 3"/>
<body><joint type="hinge" axis="0 1 0"/>
<geom type="capsule" fromto="0 0 0 0 0 1" size=".05"/></body>
</worldbody></mujoco>"""


def chunk(i: int, t: int = 5, n: int = 2, source: str = "train") -> FrameChunk:
  rng = np.random.default_rng(i)
  f = lambda *s: rng.normal(size=s).astype(np.float32)  # noqa: E731
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
  )


def test_payload_round_trip_is_bit_exact_for_every_dtype():
  arrays = {
    "a": np.array([np.nan, -0.0, np.inf], np.float32),
    "b": np.arange(7, dtype=">i8").reshape(7, 1),
    "c": np.zeros((0, 3), np.float64),
    "d": np.array([True, False]),
  }
  meta, out = fmt.decode_payload(fmt.encode_payload({"x": 1}, arrays))
  assert meta == {"x": 1}
  for k, a in arrays.items():
    assert out[k].shape == a.shape
    assert out[k].tobytes() == a.astype(a.dtype.newbyteorder("<")).tobytes()


def test_live_recording_never_blocks_and_counts_drops(tmp_path, monkeypatch):
  rec = Recorder(str(tmp_path / "r"), env=XML, queue_chunks=4)
  slow = threading.Event()
  original = rec._writer.append

  def slow_append(*a, **k):
    slow.wait(0.05)  # a disk much slower than training
    return original(*a, **k)

  monkeypatch.setattr(rec._writer, "append", slow_append)
  worst = 0.0
  for i in range(100):
    started = time.perf_counter()
    rec.on_chunk(chunk(i))
    worst = max(worst, time.perf_counter() - started)
  rec.close()
  assert worst < 0.02
  assert rec.stats.chunks_dropped > 0
  assert rec.stats.chunks_written + rec.stats.chunks_dropped == 100
  with open_recording(rec.path) as r:
    assert len(r.chunks()) == rec.stats.chunks_written


def test_sync_recording_loses_nothing(tmp_path):
  rec = Recorder(str(tmp_path / "r"), mode="sync", queue_chunks=2)
  for i in range(50):
    rec.on_chunk(chunk(i))
  rec.close()
  assert rec.stats.chunks_dropped == 0
  with open_recording(rec.path) as r:
    assert list(r.chunks().seq) == list(range(50))


def test_a_failing_disk_gives_one_warning_and_never_raises(
  tmp_path, monkeypatch
):
  rec = Recorder(str(tmp_path / "r"), mode="sync")

  def broken(*a, **k):
    raise OSError(28, "No space left on device")

  monkeypatch.setattr(rec._writer, "append", broken)
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    for i in range(5):
      rec.on_chunk(chunk(i))
      rec.on_progress(i, {"x": 1.0})
    rec.flush(timeout=5)
    time.sleep(0.2)
    rec.on_stream_end()
    rec.close()
  mine = [w for w in caught if issubclass(w.category, RecordingWarning)]
  assert len(mine) == 1 and "No space left" in str(mine[0].message)
  assert rec.failed and rec.mode == Mode.OFF


def test_disk_limit_thins_oldest_chunks_first_and_keeps_the_whole_run(tmp_path):
  one = len(fmt.encode_payload(*fmt.chunk_record(chunk(0, t=20, n=8))))
  limit = 40 * one
  rec = Recorder(
    str(tmp_path / "r"), mode="sync", max_bytes=limit, segment_bytes=5 * one
  )
  for i in range(400):
    rec.on_chunk(chunk(i, t=20, n=8))
    if i % 50 == 0:
      rec.on_chunk(chunk(i, t=20, n=8, source="eval"))
  rec.close()
  segments = [f for f in os.listdir(rec.path) if f.startswith("seg-")]
  used = sum(os.path.getsize(os.path.join(rec.path, f)) for f in segments)
  assert used <= limit + 6 * one  # the bound, plus the open segment
  assert rec.stats.chunks_thinned > 300
  with open_recording(rec.path) as r:
    seq = list(r.chunks().seq)
    assert seq == sorted(seq) and seq[0] == 0 and seq[-1] == 399
    gaps = np.diff(seq)
    assert gaps[: len(gaps) // 4].mean() > gaps[-5:].mean()  # old: sparser
    assert len(r.chunks("eval")) == 8  # eval chunks are all kept
    for c in r.chunks()[::7]:  # thinned segments still read bit-exact
      assert c.qpos.tobytes() == chunk(c.seq, t=20, n=8).qpos.tobytes()


def test_model_with_mesh_files_replays_from_portable_xml(tmp_path):
  """A mesh model read from its file: the XML and the mesh are kept, and
  the model loads from them when the MJB cannot be read (other MuJoCo)."""
  (tmp_path / "meshes").mkdir()
  (tmp_path / "meshes" / "tet.obj").write_text(
    "v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nf 1 3 2\nf 1 2 4\nf 1 4 3\nf 2 3 4\n"
  )
  (tmp_path / "robot.xml").write_text(
    '<mujoco><compiler meshdir="meshes"/><asset><mesh file="tet.obj"/>'
    '</asset><worldbody><body><freejoint/><geom type="mesh" mesh="tet"/>'
    "</body></worldbody></mujoco>"
  )
  rec = Recorder(str(tmp_path / "r"), env=str(tmp_path / "robot.xml"))
  rec.close()
  model_dir = os.path.join(rec.path, fmt.MODEL_DIR)
  assert os.listdir(os.path.join(model_dir, "assets")) == ["tet.obj"]
  os.remove(tmp_path / "meshes" / "tet.obj")  # the original is gone
  with open(os.path.join(model_dir, "model.mjb"), "wb") as f:
    f.write(b"not an mjb of this MuJoCo version")
  with open_recording(rec.path) as r:
    model = r.model()
  original = mujoco.MjModel.from_xml_string(
    (tmp_path / "robot.xml").read_text().replace('meshdir="meshes"', ""),
    assets={
      "tet.obj": open(os.path.join(model_dir, "assets", "tet.obj"), "rb").read()
    },
  )
  assert model.nmesh == 1 and model.mesh_vertnum[0] == 4
  np.testing.assert_allclose(model.mesh_vert, original.mesh_vert)


def test_model_without_recoverable_xml_keeps_the_mjb(tmp_path):
  model = mujoco.MjModel.from_xml_string(XML)
  mujoco.MjModel.from_xml_string("<mujoco/>")  # the last XML is another one
  files = model_store.capture(model)
  assert files.xml is None and "MuJoCo" in files.note
  entry = model_store.write(str(tmp_path), files)
  assert model_store.load(str(tmp_path), entry).nq == 1
