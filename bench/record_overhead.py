"""Recording overhead on training speed, bytes on disk, and open time.

One training run (one compile) through FanOut(HeadlessViewer, Recorder):
after two warm-up epochs, the epochs cycle through
  off      nothing streamed
  live     streamed to a HeadlessViewer (what the page costs the trainer)
  record   streamed to the HeadlessViewer and recorded (Recorder, live)
so the three share one compiled program and the machine's noise alike.
Steady-state env steps/s is the median of `training/sps` per variant.

Bytes per env step: segment bytes on disk / (recorded frames x envs).

--open-gb G also writes a synthetic G GiB recording of chunks the size of
this run's and times opening it (warm page cache) and reading one chunk.

  python bench/record_overhead.py
  python bench/record_overhead.py --open-gb 2
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import shutil
import statistics
import tempfile
import time

import numpy as np


def train_bench(args, root: str) -> dict:
  from brax import envs
  from brax.training.agents.ppo import networks as ppo_networks
  import jax

  from braxviewer import HeadlessViewer
  from braxviewer.brax.training.agents.ppo import train as ppo
  from braxviewer.core.fanout import FanOut
  from braxviewer.record import Recorder

  env = envs.get_environment(args.env, backend=args.backend)
  per_step = args.batch_size * args.num_minibatches * args.unroll_length
  cycle = ["off", "live", "record"]
  epochs = 2 + len(cycle) * args.cycles
  cfg = dict(
    num_timesteps=per_step * args.steps_per_epoch * epochs,
    num_evals=epochs + 1,
    episode_length=200,
    num_envs=args.num_envs,
    batch_size=args.batch_size,
    num_minibatches=args.num_minibatches,
    unroll_length=args.unroll_length,
    num_updates_per_batch=2,
    num_eval_envs=16,
    normalize_observations=True,
    seed=0,
    network_factory=functools.partial(
      ppo_networks.make_ppo_networks,
      policy_hidden_layer_sizes=(32, 32),
      value_hidden_layer_sizes=(32, 32),
    ),
  )
  headless = HeadlessViewer(args.view_envs, mode="off", max_chunks=4)
  recorder = Recorder(os.path.join(root, "run"), env=env, mode="off")
  sps = {k: [] for k in cycle}
  epoch = {"n": 0, "mode": None}

  def progress(step, metrics):
    del step
    if "eval/episode_reward" not in metrics:
      return
    if "training/sps" in metrics and epoch["mode"] is not None:
      sps[epoch["mode"]].append(metrics["training/sps"])
    epoch["n"] += 1
    if epoch["n"] >= 2:  # after the warm-up: next variant
      mode = cycle[(epoch["n"] - 2) % len(cycle)]
      epoch["mode"] = mode
      headless.set_mode("off" if mode == "off" else "live")
      recorder.set_mode("live" if mode == "record" else "off")

  ppo.train(
    environment=env,
    progress_fn=progress,
    viewer=FanOut(headless, recorder),
    **cfg,
  )
  recorder.close()
  run = recorder.path
  seg_bytes = sum(
    os.path.getsize(os.path.join(run, f))
    for f in os.listdir(run)
    if f.startswith("seg-")
  )
  s = recorder.stats
  return dict(
    sps={k: statistics.median(v) for k, v in sps.items() if v},
    epochs={k: len(v) for k, v in sps.items()},
    chunks=s.chunks_written,
    dropped=s.chunks_dropped,
    env_steps=s.env_steps_written,
    seg_bytes=seg_bytes,
    bytes_per_env_step=seg_bytes / max(1, s.env_steps_written),
    device=f"{platform.machine()}, {jax.devices()[0].device_kind},"
    f" {os.cpu_count()} CPUs, jax {jax.__version__}",
    per_step=per_step,
  )


def open_bench(gib: float, root: str, envs: int, frames: int, nq: int) -> dict:
  from braxviewer.core.frames import FrameChunk
  from braxviewer.record import format as fmt
  from braxviewer.record import open_recording
  from braxviewer.record.recorder import _write_json_atomic
  from braxviewer.record.writer import SegmentWriter

  path = os.path.join(root, "big")
  os.makedirs(path)
  _write_json_atomic(
    os.path.join(path, fmt.HEADER_FILE),
    {"format": fmt.FORMAT_NAME, "version": fmt.FORMAT_VERSION},
  )
  rng = np.random.default_rng(0)
  f = lambda *s: rng.normal(size=s).astype(np.float32)  # noqa: E731
  base = FrameChunk(
    seq=0,
    source="train",
    env_steps=0,
    dt=0.04,
    reward=f(frames, envs),
    done=f(frames, envs),
    truncation=f(frames, envs),
    metrics={"r": f(frames, envs)},
    wall_time=0.0,
    qpos=f(frames, envs, nq),
  )
  meta, arrays = fmt.chunk_record(base)
  writer = SegmentWriter(path, fsync_s=30.0)
  target = int(gib * (1 << 30))
  started = time.perf_counter()
  i = 0
  while writer.bytes_written < target:
    meta.update(seq=i, env_steps=i * 1000)
    writer.append(
      fmt.KIND_CHUNK,
      meta,
      arrays,
      source=0,
      seq=i,
      env_steps=i * 1000,
      num_steps=frames,
      num_envs=envs,
    )
    i += 1
  writer.close()
  write_s = time.perf_counter() - started
  started = time.perf_counter()
  rec = open_recording(path)
  open_s = time.perf_counter() - started
  started = time.perf_counter()
  chunks = rec.chunks()
  last = chunks[len(chunks) // 2]
  read_s = time.perf_counter() - started
  assert last.qpos.shape == (frames, envs, nq)
  rec.close()
  return dict(
    gib=writer.bytes_written / (1 << 30),
    chunks=i,
    write_s=write_s,
    open_s=open_s,
    read_one_s=read_s,
  )


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--env", default="inverted_pendulum")
  p.add_argument("--backend", default="generalized")
  p.add_argument("--num-envs", type=int, default=128)
  p.add_argument("--view-envs", type=int, default=16)
  p.add_argument("--unroll-length", type=int, default=10)
  p.add_argument("--batch-size", type=int, default=128)
  p.add_argument("--num-minibatches", type=int, default=4)
  p.add_argument("--steps-per-epoch", type=int, default=20)
  p.add_argument(
    "--cycles",
    type=int,
    default=3,
    help="epochs per variant (off, live, record)",
  )
  p.add_argument(
    "--open-gb",
    type=float,
    default=0.0,
    help="also time opening a synthetic recording this big",
  )
  p.add_argument("--skip-training", action="store_true")
  args = p.parse_args()
  root = tempfile.mkdtemp(prefix="bv-bench-")
  try:
    if not args.skip_training:
      r = train_bench(args, root)
      print(f"machine: {r['device']}")
      print(
        f"env {args.env}/{args.backend}, {args.num_envs} envs, view"
        f" {args.view_envs}, {r['epochs']} epochs per variant of"
        f" {args.steps_per_epoch} training steps ({r['per_step']} env"
        " steps each)"
      )
      off = r["sps"].get("off")
      for name, value in r["sps"].items():
        print(
          f"  {name:7s} {value:9.0f} env steps/s"
          f"  {value / off if off else float('nan'):6.3f} x off"
        )
      if "live" in r["sps"] and "record" in r["sps"]:
        print(f"  record / live = {r['sps']['record'] / r['sps']['live']:.3f}")
      print(
        f"recorded {r['chunks']} chunks ({r['dropped']} dropped),"
        f" {r['env_steps']:,} env steps, {r['seg_bytes']:,} bytes:"
        f" {r['bytes_per_env_step']:.1f} bytes per recorded env step"
      )
    if args.open_gb > 0:
      nq = 2
      frames = (
        args.unroll_length
        * args.batch_size
        * args.num_minibatches
        // args.num_envs
      )
      o = open_bench(args.open_gb, root, args.view_envs, frames, nq)
      print(
        f"synthetic recording: {o['gib']:.2f} GiB in {o['chunks']:,}"
        f" chunks of {frames} frames x {args.view_envs} envs, written in"
        f" {o['write_s']:.1f} s; opened in {o['open_s'] * 1e3:.0f} ms,"
        f" one chunk read in {o['read_one_s'] * 1e3:.2f} ms"
      )
  finally:
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
  main()
