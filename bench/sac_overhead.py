"""Training speed and compile time: upstream brax SAC vs braxviewer's SAC.

Variants (each a full ``train`` call; --variants picks them):
  upstream  brax.training.agents.sac.train
  none      braxviewer's SAC trainer, viewer=None (no tap compiled)
  off       braxviewer's SAC trainer, a HeadlessViewer in mode off
  live      the same in mode live (--view-envs envs, CHUNK_STEPS frames per
            chunk, one callback per chunk)

Side by side: the variants train at the same time, each in its own thread,
but take turns epoch by epoch (each waits in its ``progress_fn`` for its
turn), so each compiles once and machine noise (a shared machine) hits
them alike. Per epoch after the first --warmup (compile): env steps/s
(brax's ``training/sps``: training only) and process CPU time per env step
over the variant's turn (its epoch's training and eval; only it runs). The
table gives each variant's median over those epochs, its spread, and the
ratio to the first variant; also the median over epochs of the per-epoch
ratio to the epoch of the first variant that ran next to it.
Compile time: JAX's tracing + lowering + XLA compile durations of each
variant's thread (they compile concurrently: compare ratios).

  python bench/sac_overhead.py                 # inverted_pendulum
  python bench/sac_overhead.py --variants none,off,live --epochs 14
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import statistics
import threading
import time
from typing import Any, Dict

from brax import envs
from brax.training.agents.sac import networks as sac_networks
from brax.training.agents.sac import train as upstream
import jax

from braxviewer import HeadlessViewer
from braxviewer.train import sac as ours

_COMPILE_EVENTS = (
  "/jax/core/compile/jaxpr_trace_duration",
  "/jax/core/compile/jaxpr_to_mlir_module_duration",
  "/jax/core/compile/backend_compile_duration",
)


class _CompileClock:
  """Compile seconds per thread (each variant trains in its own)."""

  def __init__(self):
    self.seconds: Dict[str, float] = {}
    jax.monitoring.register_event_duration_secs_listener(self._on)

  def _on(self, event: str, duration_secs: float, **kwargs) -> None:
    del kwargs
    if event in _COMPILE_EVENTS:
      name = threading.current_thread().name
      self.seconds[name] = self.seconds.get(name, 0.0) + duration_secs


class _Turns:
  """Variants take turns: ``wait(i)`` blocks until it is i's turn,
  ``next(i)`` hands the turn on to the next variant still training."""

  def __init__(self, count: int):
    self._cond = threading.Condition()
    self._turn = 0
    self._live = [True] * count

  def wait(self, i: int) -> None:
    with self._cond:
      self._cond.wait_for(lambda: self._turn == i)

  def next(self, i: int, done: bool = False) -> None:
    with self._cond:
      self._live[i] = not done
      n = len(self._live)
      for k in range(1, n + 1):
        if self._live[(i + k) % n]:
          self._turn = (i + k) % n
          break
      self._cond.notify_all()


def main() -> None:
  p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
  p.add_argument("--env", default="inverted_pendulum")
  p.add_argument("--backend", default="generalized")
  p.add_argument("--num-envs", type=int, default=64)
  p.add_argument("--view-envs", type=int, default=16)
  p.add_argument("--batch-size", type=int, default=256)
  p.add_argument(
    "--steps-per-epoch", type=int, default=300, help="training steps per epoch"
  )
  p.add_argument("--epochs", type=int, default=10)
  p.add_argument(
    "--warmup", type=int, default=2, help="first epochs left out (compile)"
  )
  p.add_argument(
    "--variants",
    default="none,off,live,upstream",
    help="which of upstream, none, off, live to run",
  )
  p.add_argument("--json", help="also write the results here")
  args = p.parse_args()

  env = envs.get_environment(args.env, backend=args.backend)
  env_steps_per_epoch = args.num_envs * args.steps_per_epoch
  cfg: Dict[str, Any] = dict(
    num_timesteps=env_steps_per_epoch * args.epochs,
    num_evals=args.epochs + 1,
    episode_length=200,
    num_envs=args.num_envs,
    batch_size=args.batch_size,
    num_eval_envs=16,
    normalize_observations=True,
    network_factory=functools.partial(
      sac_networks.make_sac_networks, hidden_layer_sizes=(64, 64)
    ),
  )
  clock = _CompileClock()
  names = tuple(args.variants.split(","))
  turns = _Turns(len(names))
  # per variant, per epoch: (env steps/s, CPU µs per env step)
  epochs: Dict[str, list] = {k: [] for k in names}
  chunks: Dict[str, int] = {}

  def run(i: int, name: str) -> None:
    started = [0.0]

    def progress(step, metrics):
      del step
      if "training/sps" in metrics:  # an epoch (not the eval before)
        cpu = time.process_time() - started[0]
        epochs[name].append(
          (float(metrics["training/sps"]), cpu / env_steps_per_epoch * 1e6)
        )
        turns.next(i)
      turns.wait(i)
      started[0] = time.process_time()

    viewer = None
    kw: Dict[str, Any] = {}
    if name in ("off", "live"):
      viewer = HeadlessViewer(args.view_envs, mode=name, max_chunks=10_000)
      kw = {"viewer": viewer}
    train_fn = upstream.train if name == "upstream" else ours.train
    try:
      train_fn(environment=env, seed=0, progress_fn=progress, **cfg, **kw)
    finally:
      turns.next(i, done=True)
    if viewer is not None and viewer.stream_info is not None:
      chunks[name] = sum(1 for c in viewer.chunks if c.source == "train")

  threads = [
    threading.Thread(target=run, args=(i, n), name=n, daemon=True)
    for i, n in enumerate(names)
  ]
  for t in threads:
    t.start()
  for t in threads:
    t.join()

  first = names[0]
  steady = {k: v[args.warmup :] for k, v in epochs.items()}
  base_sps = statistics.median(e[0] for e in steady[first])
  base_cpu = statistics.median(e[1] for e in steady[first])
  base_compile = clock.seconds.get(first, float("nan"))
  print(
    f"\n{args.env} ({args.backend}), {args.num_envs} envs,"
    f" {args.steps_per_epoch} training steps x {args.epochs} epochs (first"
    f" {args.warmup} left out), CHUNK_STEPS {ours.CHUNK_STEPS},"
    f" {args.view_envs} streamed; variants interleaved epoch by epoch;"
    f" medians [min, max] over epochs; chunks received: {chunks}"
  )
  print(
    f"| variant | env steps/s | x {first} | paired | CPU µs per env step"
    f" | x {first} | paired | compile s | x {first} |"
  )
  print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
  for name in names:
    sps = [e[0] for e in steady[name]]
    cpu = [e[1] for e in steady[name]]
    pair_sps = [a[0] / b[0] for a, b in zip(steady[name], steady[first])]
    pair_cpu = [a[1] / b[1] for a, b in zip(steady[name], steady[first])]
    comp = clock.seconds.get(name, float("nan"))
    print(
      f"| {name} | {statistics.median(sps):,.0f} [{min(sps):,.0f},"
      f" {max(sps):,.0f}] | {statistics.median(sps) / base_sps:.3f} |"
      f" {statistics.median(pair_sps):.3f} | {statistics.median(cpu):.2f}"
      f" [{min(cpu):.2f}, {max(cpu):.2f}] |"
      f" {statistics.median(cpu) / base_cpu:.3f} |"
      f" {statistics.median(pair_cpu):.3f} | {comp:.1f} |"
      f" {comp / base_compile:.3f} |"
    )
  if args.json:
    with open(args.json, "w") as f:
      json.dump(
        {
          "args": vars(args),
          "machine": platform.platform(),
          "when": time.strftime("%Y-%m-%d %H:%M"),
          "epochs": epochs,
          "compile_s": clock.seconds,
          "chunks": chunks,
        },
        f,
        indent=1,
      )


if __name__ == "__main__":
  main()
