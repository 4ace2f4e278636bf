"""A tiny training recorded through a FanOut: the recording holds exactly
what was streamed, and survives being cut at any byte."""

import os
import shutil

import av
import numpy as np
import pytest

from braxviewer.record import format as fmt
from braxviewer.record import open_recording
from braxviewer.record.export import export_video

pytestmark = pytest.mark.slow

FIELDS = ("qpos", "link_pos", "link_rot", "reward", "done", "truncation")


def assert_same_chunk(a, b):
  assert (a.seq, a.source, a.env_steps, a.dt, a.wall_time) == (
    b.seq,
    b.source,
    b.env_steps,
    b.dt,
    b.wall_time,
  )
  for name in FIELDS:
    x, y = getattr(a, name), getattr(b, name)
    assert (x is None) == (y is None), name
    if x is not None:
      assert x.dtype == y.dtype and x.shape == y.shape, name
      assert x.tobytes() == y.tobytes(), name  # bitwise, NaN included
  assert list(a.metrics) == list(b.metrics)
  for k in a.metrics:
    assert a.metrics[k].dtype == b.metrics[k].dtype
    assert a.metrics[k].tobytes() == b.metrics[k].tobytes(), k


def test_recording_holds_exactly_the_streamed_chunks_and_progress(recorded_run):
  run = recorded_run
  assert run.warnings == []
  assert run.stats.chunks_dropped == 0 and run.stats.failed is None
  streamed = list(run.headless.chunks)
  with open_recording(run.path) as rec:
    for source in ("train", "eval"):
      mine = [c for c in streamed if c.source == source]
      got = list(rec.chunks(source))
      assert len(got) == len(mine) > 0
      for a, b in zip(mine, got):
        assert_same_chunk(a, b)
    assert [s for s, _ in rec.progress()] == [
      s for s, _ in run.headless.progress
    ]
    assert rec.progress()[-1][1] == pytest.approx(run.headless.progress[-1][1])
    assert rec.stream_info == run.headless.stream_info
    model = rec.model()
    assert model.nq == rec.stream_info.nq
    train = rec.chunks("train")
    assert list(train.env_steps) == [
      c.env_steps for c in streamed if c.source == "train"
    ]


def _complete_chunks(path: str, cut: int):
  """(source, seq) of chunks whose record ends at or before ``cut``."""
  rows = np.fromfile(
    os.path.join(path, fmt.index_name(0)), dtype=fmt.INDEX_DTYPE
  )
  done = rows[
    (rows["kind"] == fmt.KIND_CHUNK) & (rows["offset"] + rows["size"] <= cut)
  ]
  return {(fmt.SOURCE_NAMES[int(r["source"])], int(r["seq"])) for r in done}


@pytest.mark.parametrize("cut_index", [False, True])
def test_a_recording_cut_at_a_random_byte_opens_with_every_complete_chunk(
  recorded_run, tmp_path, cut_index
):
  run = recorded_run
  streamed = {(c.source, c.seq): c for c in run.headless.chunks}
  seg = fmt.segment_name(0)
  size = os.path.getsize(os.path.join(run.path, seg))
  rng = np.random.default_rng(7 + cut_index)
  cuts = sorted(set(rng.integers(0, size, 12).tolist()) | {0, size - 1})
  for k, cut in enumerate(cuts):
    dest = str(tmp_path / f"cut{k}")
    shutil.copytree(run.path, dest)
    with open(os.path.join(dest, seg), "r+b") as f:
      f.truncate(cut)
    if cut_index:  # the index lost its tail too (or all of it)
      idx = os.path.join(dest, fmt.index_name(0))
      isize = os.path.getsize(idx)
      with open(idx, "r+b") as f:
        f.truncate(int(isize * cut / size) - 13 if cut > size // 2 else 0)
    expected = _complete_chunks(run.path, cut)
    with open_recording(dest) as rec:
      got = {}
      for source in ("train", "eval"):
        for c in rec.chunks(source):
          got[(c.source, c.seq)] = c
      assert set(got) == expected, cut
      for key, chunk in got.items():
        assert_same_chunk(streamed[key], chunk)


def test_the_trained_recording_exports_and_keeps_the_brax_model(
  recorded_run, tmp_path
):
  run = recorded_run
  with open_recording(run.path) as rec:
    assert rec.header["model"]["xml"] == "model.xml"  # portable copy kept
    total = rec.chunks("train").total_frames
  result = export_video(
    run.path, str(tmp_path / "pendulum.mp4"), env=3, width=160, height=120
  )
  with av.open(result.path) as container:
    frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
  assert len(frames) == result.frames == total
  assert frames[0].std() > 3
