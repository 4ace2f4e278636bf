"""Training speed and compile time: upstream brax SAC vs braxviewer's SAC.

Each round trains four times, one after the other in this process:
  upstream  brax.training.agents.sac.train
  none      braxviewer's SAC trainer, viewer=None (no tap compiled)
  off       braxviewer's SAC trainer, a HeadlessViewer in mode off
  live      the same in mode live (--view-envs envs, CHUNK_STEPS frames per
            chunk, one callback per chunk)

Steady-state env steps/s: median of `training/sps` over the epochs after the
first two (the first compiles; upstream compiles its epoch program twice).
Compile time: JAX's tracing + lowering + XLA compile durations, per run.

  python bench/sac_overhead.py                 # inverted_pendulum, 1 round
  python bench/sac_overhead.py --rounds 2 --num-envs 128
  python bench/sac_overhead.py --variants none,off,live   # skip upstream
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import statistics
import time
from typing import Any, Dict

from brax import envs
from brax.training.agents.sac import networks as sac_networks
from brax.training.agents.sac import train as upstream
import jax

from braxviewer import HeadlessViewer
from braxviewer.brax.training.agents.sac import train as ours

_COMPILE_EVENTS = (
  "/jax/core/compile/jaxpr_trace_duration",
  "/jax/core/compile/jaxpr_to_mlir_module_duration",
  "/jax/core/compile/backend_compile_duration",
)


class _CompileClock:
  def __init__(self):
    self.seconds = 0.0
    jax.monitoring.register_event_duration_secs_listener(self._on)

  def _on(self, event: str, duration_secs: float, **kwargs) -> None:
    del kwargs
    if event in _COMPILE_EVENTS:
      self.seconds += duration_secs


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
  p.add_argument("--epochs", type=int, default=6)
  p.add_argument("--rounds", type=int, default=1)
  p.add_argument(
    "--variants",
    default="upstream,none,off,live",
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
  results = {k: {"sps": [], "compile_s": [], "chunks": []} for k in names}

  def run(name: str, seed: int) -> None:
    sps = []

    def progress(step, metrics):
      del step
      if "eval/episode_reward" in metrics and "training/sps" in metrics:
        sps.append(float(metrics["training/sps"]))

    viewer = None
    kw: Dict[str, Any] = {}
    if name in ("off", "live"):
      viewer = HeadlessViewer(args.view_envs, mode=name, max_chunks=4)
      kw = {"viewer": viewer}
    train_fn = upstream.train if name == "upstream" else ours.train
    clock.seconds = 0.0
    train_fn(environment=env, seed=seed, progress_fn=progress, **cfg, **kw)
    res = results[name]
    res["sps"].append(statistics.median(sps[2:] or sps))
    res["compile_s"].append(clock.seconds)
    sent = 0
    if viewer is not None and viewer.stream_info is not None:
      sent = sum(1 for c in viewer.chunks if c.source == "train")
    res["chunks"].append(sent)
    print(
      f"round {seed} {name:9s} steady {res['sps'][-1]:9.0f} steps/s"
      f" over {len(sps[2:] or sps)} epochs  compile {clock.seconds:6.1f} s",
      flush=True,
    )

  for r in range(args.rounds):
    for name in names:
      run(name, r)

  base = statistics.median(results[names[0]]["sps"])
  base_compile = statistics.median(results[names[0]]["compile_s"])
  print(
    f"\n{args.env} ({args.backend}), {args.num_envs} envs,"
    f" {args.steps_per_epoch} training steps x {args.epochs} epochs,"
    f" CHUNK_STEPS {ours.CHUNK_STEPS}, {args.view_envs} streamed;"
    f" medians of {args.rounds} round(s)"
  )
  print(
    f"| variant | steady env steps/s | x {names[0]} | compile s | x {names[0]} |"
  )
  print("|---|---:|---:|---:|---:|")
  for name in names:
    sps = statistics.median(results[name]["sps"])
    comp = statistics.median(results[name]["compile_s"])
    print(
      f"| {name} | {sps:,.0f} | {sps / base:.3f} | {comp:.1f} |"
      f" {comp / base_compile:.3f} |"
    )
  if args.json:
    with open(args.json, "w") as f:
      json.dump(
        {
          "args": vars(args),
          "machine": platform.platform(),
          "when": time.strftime("%Y-%m-%d %H:%M"),
          "results": results,
        },
        f,
        indent=1,
      )


if __name__ == "__main__":
  main()
