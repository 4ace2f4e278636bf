"""MP4 export on this CPU-only machine (MuJoCo offscreen via OSMesa/EGL,
PyAV): frame count, a non-blank first frame, one env and the grid."""

from __future__ import annotations

import os
import subprocess
import sys

import av
import numpy as np
import pytest

from braxviewer.record import open_recording
from braxviewer.record.export import ExportError, export_video, parse_steps


def decode(path: str):
  with av.open(path) as container:
    stream = container.streams.video[0]
    frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    return frames, float(stream.average_rate), stream.codec_context.name


@pytest.fixture(scope="module")
def recording(tmp_path_factory, make_recording):
  return make_recording(
    str(tmp_path_factory.mktemp("export") / "run"), chunks=8
  )


def test_cli_exports_one_env_over_a_step_range(recording, tmp_path):
  with open_recording(recording) as rec:
    chunks = rec.chunks("train")
    steps = chunks.env_steps
    lo, hi = int(steps[2]), int(steps[4])
    expected = int(chunks.num_steps[chunks.in_range(lo, hi)].sum())
  out = str(tmp_path / "clip.mp4")
  proc = subprocess.run(
    [
      sys.executable,
      "-m",
      "braxviewer",
      "export",
      recording,
      "--env",
      "3",
      "--steps",
      f"{lo}:{hi}",
      "-o",
      out,
      "--width",
      "320",
      "--height",
      "240",
    ],
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert proc.returncode == 0, proc.stderr
  assert f"{expected} frames" in proc.stdout
  frames, fps, codec = decode(out)
  assert len(frames) == expected == 30  # 3 chunks of 10 frames
  assert codec == "h264" and fps == pytest.approx(20.0)  # dt = 0.05 s
  first = frames[0].astype(int)
  assert first.shape == (240, 320, 3)
  assert first.std() > 10 and 40 < first.mean() < 250  # floor, sky, puck
  red = (first[..., 0] > 150) & (first[..., 1] < 90) & (first[..., 2] < 90)
  assert red.sum() > 50  # the followed env's red puck is in view
  corners = first[[0, 0, -1, -1], [0, -1, 0, -1]]
  assert corners.min() > 180  # a light background, not MuJoCo's black


@pytest.mark.slow  # renders video offscreen
def test_grid_export_shows_every_env_and_moves(recording, tmp_path):
  out = str(tmp_path / "grid.mp4")
  result = export_video(
    recording, out, grid=True, steps=":", width=320, height=240, camera="top"
  )
  frames, _, _ = decode(out)
  with open_recording(recording) as rec:
    total = rec.chunks("train").total_frames
  assert len(frames) == result.frames == total >= 80
  first, last = frames[0].astype(int), frames[-1].astype(int)
  assert first.std() > 10
  assert np.abs(first - last).max() > 60  # bodies moved
  from scipy import ndimage

  colour = first.max(-1) - first.min(-1) > 90  # red pucks, blue arms
  labels, count = ndimage.label(ndimage.binary_closing(colour, iterations=2))
  areas = ndimage.sum(colour, labels, range(1, count + 1))
  assert sum(a > 50 for a in areas) == 4  # four envs seen from the top
  ys, xs = np.nonzero(colour)  # framed: centred, and not small in a corner
  assert abs(xs.mean() - 160) < 40 and abs(ys.mean() - 120) < 40
  assert np.ptp(xs) > 0.4 * 320 or np.ptp(ys) > 0.4 * 240


@pytest.mark.slow  # renders video offscreen
def test_speed_keeps_at_most_60_frames_per_second(recording, tmp_path):
  out = str(tmp_path / "fast.mp4")
  result = export_video(
    recording,
    out,
    env=0,
    steps=parse_steps(None),
    width=64,
    height=48,
    speed=4.0,
  )
  assert result.fps == pytest.approx(40.0)  # 4 x 20 fps, no frame skipped
  result = export_video(recording, out, env=0, width=64, height=48, speed=6.0)
  assert result.fps == pytest.approx(60.0)  # 120 -> every 2nd frame
  with open_recording(recording) as rec:
    total = rec.chunks("train").total_frames
  assert result.frames == total // 2
  assert len(decode(out)[0]) == total // 2
  assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


@pytest.mark.parametrize("text", ["a:b", "1:2:3", "9:3"])
def test_bad_step_ranges_are_refused(text):
  with pytest.raises(ExportError):
    parse_steps(text)
