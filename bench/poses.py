"""How fast BatchedScene turns streamed frames into world body poses.

Prints poses per second (frames x envs / s) for brax's ant and humanoid at
N = 16 and 64, from qpos chunks (mj_kinematics on the kinematic twin: one
call per frame for all envs), from the per-env reference path (one call per
env, what the twin replaces), and from link chunks (positional/spring). Also
the one-off costs: building the scene and the N-env batched model.

  python bench/poses.py                 # T = 32 frames per chunk, best of 5
  python bench/poses.py --frames 128 --repeats 9

The bar: 64 humanoids at 60 frames/s = 3,840 poses/s on one core.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import pathlib
import platform
import time
import warnings

import mujoco
import numpy as np

from braxviewer.scene.batched import BatchedScene
from braxviewer.scene.kinematics import BatchKinematics

ASSETS = (
  pathlib.Path(importlib.util.find_spec("brax").submodule_search_locations[0])
  / "envs"
  / "assets"
)


def _best(fn, repeats: int) -> float:
  """Best wall time of ``repeats`` calls (least disturbed by other load)."""
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return min(times)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument(
    "--frames", type=int, default=32, help="frames per chunk (T)"
  )
  parser.add_argument("--repeats", type=int, default=5)
  args = parser.parse_args()
  warnings.simplefilter("ignore")  # MuJoCo 4 notes on brax's old XMLs

  print(
    f"machine: {platform.processor() or platform.machine()},"
    f" {os.cpu_count()} CPUs (shared), mujoco {mujoco.__version__},"
    f" numpy {np.__version__}"
  )
  print(f"chunk: T={args.frames} frames; best of {args.repeats}\n")
  header = (
    f"{'model':9s} {'N':>3s} {'qpos poses/s':>13s}"
    f" {'per-env poses/s':>16s} {'links poses/s':>14s}"
    f" {'scene build':>12s} {'batched model':>14s}"
  )
  print(header)
  print("-" * len(header))
  rng = np.random.default_rng(0)
  for name in ("ant", "humanoid"):
    xml = str(ASSETS / f"{name}.xml")
    for n in (16, 64):
      start = time.perf_counter()
      scene = BatchedScene(xml, n)
      build = time.perf_counter() - start
      start = time.perf_counter()
      _ = scene.batched_model
      batched = time.perf_counter() - start
      model = scene.single_model
      qpos = (
        model.qpos0 + 0.2 * rng.standard_normal((args.frames, n, model.nq))
      ).astype(np.float32)
      links = model.nbody - 1
      pos = rng.standard_normal((args.frames, n, links, 3)).astype(np.float32)
      rot = rng.standard_normal((args.frames, n, links, 4)).astype(np.float32)
      reference = BatchKinematics(model, n, use_twin=False)
      flat = qpos.astype(np.float64)
      poses = args.frames * n
      fast = poses / _best(
        lambda s=scene, q=qpos: s.poses_from_qpos(q), args.repeats
      )
      slow = poses / _best(lambda r=reference, f=flat: r(f), args.repeats)
      link = poses / _best(
        lambda s=scene, p=pos, r=rot: s.poses_from_links(p, r), args.repeats
      )
      print(
        f"{name:9s} {n:3d} {fast:13,.0f} {slow:16,.0f} {link:14,.0f}"
        f" {build * 1e3:10.0f}ms {batched * 1e3:12.0f}ms"
      )
  print("\nbar: 64 humanoids x 60 frames/s = 3,840 poses/s")


if __name__ == "__main__":
  main()
