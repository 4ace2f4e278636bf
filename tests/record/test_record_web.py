"""``WebViewerBatched(record_dir=...)`` and ``viewer.record(path)``: the page
records what it receives, and the recording replays it bit for bit."""

from __future__ import annotations

import time

import mujoco
import numpy as np

from braxviewer import HeadlessViewer, WebViewerBatched
from braxviewer.core.fanout import FanOut
from braxviewer.record import open_recording
from braxviewer.testing.synthetic import PUCK_XML, SyntheticStream


def test_web_viewer_records_what_it_receives(tmp_path, wait_until):
  model = mujoco.MjModel.from_xml_string(PUCK_XML)
  path = str(tmp_path / "run")
  viewer = WebViewerBatched(num_envs=4, port=0, record_dir=path)
  seen = HeadlessViewer(num_envs=4)
  try:
    viewer.run()
    viewer.init(PUCK_XML)
    stream = SyntheticStream(
      FanOut(viewer, seen),
      model,
      num_envs=4,
      chunk_length=10,
      chunks_per_s=20.0,
    ).start()
    assert wait_until(lambda: stream.chunks_sent >= 10, timeout=30)
    stream.stop()
    assert stream.error is None
  finally:
    viewer.close()  # closes (flushes) the recorder too
  with open_recording(path) as rec:
    got = list(rec.chunks("train"))
    assert len(got) == len(seen.chunks) >= 10
    for a, b in zip(seen.chunks, got):
      assert a.seq == b.seq and a.qpos.tobytes() == b.qpos.tobytes()
      assert a.metrics.keys() == b.metrics.keys()
    assert rec.model().nbody == model.nbody
    assert rec.stream_info.num_envs == 4
    assert len(rec.progress()) > 0


def test_record_starts_mid_run_with_the_stream_info(tmp_path):
  model = mujoco.MjModel.from_xml_string(PUCK_XML)
  viewer = WebViewerBatched(num_envs=2, port=0)
  try:
    viewer.run()
    viewer.init(model)
    stream = SyntheticStream(
      viewer, model, num_envs=2, chunk_length=5, chunks_per_s=40.0
    ).start()
    time.sleep(0.5)
    recorder = viewer.record(str(tmp_path / "late"), mode="sync")
    time.sleep(0.5)
    stream.stop()
  finally:
    viewer.close()
  assert recorder.stats.chunks_written > 0
  with open_recording(recorder.path) as rec:
    seq = rec.chunks().seq
    assert seq[0] > 0 and np.all(np.diff(seq) == 1)
    assert rec.stream_info.num_envs == 2 and rec.model().nq == model.nq
