"""A viewer server in another process (``braxviewer.connect``) vs the viewer
in the training process (``WebViewerBatched``), side by side in one run.

Part 1, training: one PPO training whose viewer switches every epoch
between off, the in-process web viewer (live) and a connection to a
``python -m braxviewer serve`` subprocess (live). One compiled program, the
variants interleaved epoch by epoch, so machine noise hits all alike.
Steady env steps/s and process CPU seconds per million env steps, medians
over each variant's epochs (the first two epochs hold the compiles).

Part 2, the socket: chunks of --socket-envs envs x a humanoid-sized qpos
(28) x T frames pushed as fast as the trainer's thread can hand them over,
for --seconds each: what one on_chunk costs the trainer's thread (median
µs), and what reaches the server (chunks/s and MB/s written to the socket;
chunks dropped because the socket was slower).

  python bench/connect_overhead.py               # both parts
  python bench/connect_overhead.py --part socket
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from typing import Any, Dict, List

import numpy as np

import braxviewer
from braxviewer.core.frames import FrameChunk
from braxviewer.core.protocol import Mode, StreamInfo
from braxviewer.remote import wire


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _start_server(port: int) -> subprocess.Popen:
  proc = subprocess.Popen(
    [sys.executable, "-m", "braxviewer", "serve", "--port", str(port)],
    stdout=subprocess.PIPE,
    stderr=subprocess.STDOUT,
    text=True,
  )
  assert proc.stdout is not None
  for line in proc.stdout:
    if "training runs connect" in line:
      return proc
  raise RuntimeError("the server did not start")


class _Alternating:
  """One viewer for the trainer that is, epoch by epoch, off or one of
  ``viewers`` (they all see the stream start/end and progress)."""

  def __init__(self, viewers: Dict[str, Any], num_envs: int):
    self.viewers = viewers
    self.num_envs = num_envs
    self.current = "off"
    self.info_keys = None

  def init(self, env: Any) -> None:
    for v in self.viewers.values():
      v.init(env)

  def requested_envs(self) -> int:
    return self.num_envs

  @property
  def mode(self) -> Mode:
    if self.current == "off":
      return Mode.OFF
    return Mode.parse(self.viewers[self.current].mode)

  def on_stream_start(self, info: StreamInfo) -> None:
    for v in self.viewers.values():
      v.on_stream_start(info)

  def on_chunk(self, chunk: FrameChunk) -> None:
    if self.current != "off":
      self.viewers[self.current].on_chunk(chunk)

  def on_progress(self, env_steps: int, metrics) -> None:
    for v in self.viewers.values():
      v.on_progress(env_steps, metrics)

  def on_trainer_mode(self, mode: Mode) -> None:
    for v in self.viewers.values():
      v.on_trainer_mode(mode)

  def on_stream_end(self) -> None:
    for v in self.viewers.values():
      v.on_stream_end()


def _training(args: argparse.Namespace, address: str) -> None:
  from brax import envs
  from brax.training.agents.ppo import networks as ppo_networks

  from braxviewer.brax.training.agents.ppo import train as ppo

  env = envs.get_environment(args.env, backend="generalized")
  web = braxviewer.WebViewerBatched(num_envs=args.view_envs, port=0)
  web.run()
  remote = braxviewer.connect(address, num_envs=args.view_envs, run="bench")
  viewer = _Alternating({"in-process": web, "connect": remote}, args.view_envs)
  viewer.init(env)
  assert remote.wait_connected(30)
  cycle = ["off", "in-process", "connect"]
  per_epoch = args.steps_per_epoch * args.num_envs * args.unroll_length * 4
  sps: List[float] = []
  cpu: List[float] = []
  ran: List[str] = []

  def progress(step: int, metrics: Dict[str, float]) -> None:
    if "eval/episode_reward" not in metrics:
      return
    cpu.append(time.process_time())
    if "training/sps" in metrics:
      sps.append(metrics["training/sps"])
      ran.append(viewer.current)
    viewer.current = cycle[len(sps) % len(cycle)] if len(sps) >= 2 else "off"

  ppo.train(
    environment=env,
    num_timesteps=per_epoch * args.epochs,
    num_evals=args.epochs + 1,
    episode_length=200,
    num_envs=args.num_envs,
    batch_size=args.num_envs,
    num_minibatches=4,
    unroll_length=args.unroll_length,
    num_updates_per_batch=2,
    num_eval_envs=16,
    network_factory=functools.partial(
      ppo_networks.make_ppo_networks,
      policy_hidden_layer_sizes=(32, 32),
      value_hidden_layer_sizes=(32, 32),
    ),
    viewer=viewer,
    progress_fn=progress,
    seed=0,
  )
  web.close()
  remote.close()
  cpu_per_m = [(b - a) * 1e6 / per_epoch for a, b in zip(cpu[1:], cpu[2:])]
  print(
    f"\ntraining: {args.env}, {args.num_envs} envs, {args.view_envs}"
    f" streamed, {args.epochs} epochs (the first 2 not counted)"
  )
  print(
    f"{'variant':11s} {'epochs':>6s} {'steps/s':>9s} {'x off':>6s}"
    f" {'cpu s/M':>8s} {'x off':>6s}"
  )
  rows = {}
  for name in cycle:
    idx = [i for i, r in enumerate(ran) if r == name and i >= 2]
    rows[name] = (
      statistics.median(sps[i] for i in idx),
      statistics.median(cpu_per_m[i] for i in idx if i < len(cpu_per_m)),
      len(idx),
    )
  for name, (s, c, n) in rows.items():
    print(
      f"{name:11s} {n:6d} {s:9.0f} {s / rows['off'][0]:6.3f}"
      f" {c:8.2f} {c / rows['off'][1]:6.3f}"
    )
  print(f"connect: {remote.stats}")


def _chunk(seq: int, envs: int, frames: int) -> FrameChunk:
  zeros = np.zeros((frames, envs), np.float32)
  return FrameChunk(
    seq=seq,
    source="train",
    env_steps=(seq + 1) * frames * envs,
    dt=0.05,
    reward=zeros,
    done=zeros,
    truncation=zeros,
    metrics={"reward_forward": zeros, "reward_ctrl": zeros},
    wall_time=time.time(),
    qpos=np.random.rand(frames, envs, 28).astype(np.float32),
  )


def _socket(args: argparse.Namespace, address: str) -> None:
  info = StreamInfo(
    num_envs=args.socket_envs,
    num_train_envs=args.socket_envs,
    envs_per_device=args.socket_envs,
    kind="qpos",
    nq=28,
    num_links=None,
    dt=0.05,
    chunk_length=args.frames,
    reward_terms=("reward_forward", "reward_ctrl"),
  )
  chunks = [_chunk(i, args.socket_envs, args.frames) for i in range(8)]
  size = len(wire.encode(wire.Chunk(chunks[0])))
  print(
    f"\nsocket: {args.socket_envs} envs x nq 28 x {args.frames} frames"
    f" ({size / 1e6:.2f} MB a chunk on the wire), {args.seconds:.0f} s each"
  )
  import mujoco

  humanoid = mujoco.MjModel.from_xml_string(
    "<mujoco><worldbody><body><freejoint/><geom size='.1'/></body>"
    + "".join(
      f"<body pos='{i} 0 0'><joint type='hinge'/><geom size='.1'/></body>"
      for i in range(21)
    )
    + "</worldbody></mujoco>"
  )
  assert humanoid.nq == 28
  remote = braxviewer.connect(address, num_envs=args.socket_envs, run="socket")
  web = braxviewer.WebViewerBatched(num_envs=args.socket_envs, port=0)
  web.run()
  for name, viewer in (("in-process", web), ("connect", remote)):
    viewer.init(humanoid)
    if name == "connect":
      assert remote.wait_connected(30)
      deadline = time.monotonic() + 10
      while remote.mode != Mode.LIVE and time.monotonic() < deadline:
        time.sleep(0.05)
    viewer.on_stream_start(info)
    costs = []
    sent0 = getattr(viewer, "stats", None)
    bytes0 = remote.stats.bytes_sent
    n = 0
    t0 = time.monotonic()
    while time.monotonic() - t0 < args.seconds:
      c = chunks[n % len(chunks)]
      start = time.perf_counter()
      viewer.on_chunk(c)
      costs.append(time.perf_counter() - start)
      n += 1
    elapsed = time.monotonic() - t0
    if name == "connect":
      time.sleep(1.0)  # the outbox drains
      moved = remote.stats.bytes_sent - bytes0
      print(
        f"{name:11s} on_chunk {statistics.median(costs) * 1e6:7.0f} µs"
        f" (p90 {np.percentile(costs, 90) * 1e6:6.0f})  handed {n / elapsed:6.0f}"
        f" chunks/s  sent {remote.stats.chunks_sent / elapsed:6.0f} chunks/s"
        f" {moved / elapsed / 1e6:6.1f} MB/s  dropped"
        f" {remote.stats.chunks_dropped}"
      )
    else:
      del sent0
      st = web.stats()
      print(
        f"{name:11s} on_chunk {statistics.median(costs) * 1e6:7.0f} µs"
        f" (p90 {np.percentile(costs, 90) * 1e6:6.0f})  handed {n / elapsed:6.0f}"
        f" chunks/s  received {st['chunks_received'] / elapsed:6.0f} chunks/s"
        f"  dropped {st['chunks_dropped']}"
      )
  remote.close()
  web.close()


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument(
    "--part", choices=("both", "training", "socket"), default="both"
  )
  p.add_argument("--env", default="inverted_pendulum")
  p.add_argument("--num-envs", type=int, default=128)
  p.add_argument("--view-envs", type=int, default=16)
  p.add_argument("--unroll-length", type=int, default=10)
  p.add_argument("--steps-per-epoch", type=int, default=40)
  p.add_argument("--epochs", type=int, default=11)
  p.add_argument("--socket-envs", type=int, default=64)
  p.add_argument("--frames", type=int, default=40)
  p.add_argument("--seconds", type=float, default=10.0)
  args = p.parse_args()
  port = _free_port()
  server = _start_server(port)
  address = f"127.0.0.1:{port}"
  try:
    if args.part in ("both", "socket"):
      _socket(args, address)
    if args.part in ("both", "training"):
      _training(args, address)
  finally:
    server.terminate()
    server.wait(10)
  print(
    f"\nmachine: {platform.machine()}, {os.cpu_count()} cores,"
    f" python {platform.python_version()}"
  )


if __name__ == "__main__":
  main()
