"""How long the live page's *Save clip* takes: the old way and the new.

Builds a live timeline of 43 chunks x 16 envs x 80 frames (3,440 frames,
dt 0.05 s) from the synthetic stream (no JAX), then renders it as an MP4
the old way (what *Save clip* did: every frame, 640x480, MuJoCo's full
look: shadows, reflections, 4x multisampling) and the new way
(:func:`braxviewer.web.clip.render_page_clip`: at most 30 frames per
second, the same 640x480, draft look), in one process, one after the
other; prints the wall and CPU seconds of each and the ratio.

  python bench/clip_speed.py                    # the grid of the puck model
  python bench/clip_speed.py --model ant        # a brax env's XML
  python bench/clip_speed.py --follow --chunks 8
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import pathlib
import platform
import tempfile
import time
import warnings

import mujoco
import numpy as np

from braxviewer.core.timeline import RecentChunks
from braxviewer.record.export import render_clip
from braxviewer.record.offscreen import configure_gl
from braxviewer.testing.synthetic import PUCK_XML, SyntheticStream
from braxviewer.viewer.headless import HeadlessViewer
from braxviewer.web.clip import CLIP_SIZE, render_page_clip


def _model(name: str) -> mujoco.MjModel:
  if name == "puck":
    return mujoco.MjModel.from_xml_string(PUCK_XML)
  spec = importlib.util.find_spec("brax")
  assert spec is not None and spec.submodule_search_locations
  assets = pathlib.Path(spec.submodule_search_locations[0]) / "envs/assets"
  return mujoco.MjModel.from_xml_path(str(assets / f"{name}.xml"))


def _timeline(model: mujoco.MjModel, chunks: int, envs: int, frames: int):
  sink = HeadlessViewer(num_envs=envs, max_chunks=chunks)
  stream = SyntheticStream(
    sink,
    model,
    num_envs=envs,
    chunk_length=frames,
    frame_skip=max(1, round(0.05 / model.opt.timestep)),
    chunks_per_s=None,
  ).start()
  while stream.chunks_sent < chunks and stream.alive:
    time.sleep(0.05)
  stream.stop()
  kept = RecentChunks(max_chunks=64, max_bytes=1 << 30)
  for chunk in list(sink.chunks)[:chunks]:
    kept.append(chunk)
  return kept.chunks("train")


def _timed(fn) -> tuple:
  wall, cpu = time.perf_counter(), time.process_time()
  result = fn()
  return result, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
  parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
  parser.add_argument("--model", default="puck", help="puck or a brax env")
  parser.add_argument("--chunks", type=int, default=43)
  parser.add_argument("--envs", type=int, default=16)
  parser.add_argument("--frames", type=int, default=80, help="per chunk")
  parser.add_argument(
    "--follow", action="store_true", help="one env, follow camera"
  )
  args = parser.parse_args()
  warnings.simplefilter("ignore")  # MuJoCo 4 notes on brax's old XMLs
  backend = configure_gl()
  model = _model(args.model)
  timeline = _timeline(model, args.chunks, args.envs, args.frames)
  grid = not args.follow
  print(
    f"machine: {platform.machine()}, {os.cpu_count()} CPUs (shared),"
    f" MUJOCO_GL={backend}, mujoco {mujoco.__version__}; {args.model},"
    f" {len(timeline)} chunks x {int(timeline.num_envs.min())} envs,"
    f" {timeline.total_frames} frames, {'grid' if grid else 'follow'};"
    f" load average {os.getloadavg()[0]:.1f}",
    flush=True,
  )
  camera = "overview" if grid else "follow"
  with tempfile.TemporaryDirectory() as tmp:
    old, old_s, old_cpu = _timed(
      lambda: render_clip(
        timeline,
        model,
        np.arange(len(timeline)),
        os.path.join(tmp, "old.mp4"),
        grid=grid,
        camera=camera,
      )
    )
    print(
      f"old: {old.frames} frames {old.width}x{old.height} at"
      f" {old.fps:.0f} fps, full look: {old_s:.1f} s ({old_cpu:.1f} s CPU)",
      flush=True,
    )
    new, new_s, new_cpu = _timed(
      lambda: render_page_clip(
        timeline, model, os.path.join(tmp, "new.mp4"), grid=grid, size=CLIP_SIZE
      )
    )
    print(
      f"new: {new.frames} frames {new.width}x{new.height} at"
      f" {new.fps:.0f} fps, draft look: {new_s:.1f} s ({new_cpu:.1f} s CPU)"
    )
  print(
    f"ratio: {old_s / new_s:.1f}x faster ({old_cpu / new_cpu:.1f}x less CPU);"
    f" load average {os.getloadavg()[0]:.1f}"
  )


if __name__ == "__main__":
  main()
