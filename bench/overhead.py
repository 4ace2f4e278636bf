"""Training speed and compile time: upstream brax PPO vs braxviewer's trainer.

Each round trains three times, interleaved so machine noise hits all alike:
  upstream  brax.training.agents.ppo.train
  none      braxviewer's trainer, viewer=None (no tap compiled)
  viewer    braxviewer's trainer with a viewer attached, switching mode every
            epoch through --modes (off, live, sync): the modes share one
            compiled program, so they are compared within one run. The viewer
            is a HeadlessViewer streaming --view-envs envs: this measures what
            the trainer pays; the web page's own CPU use is in bench/web_fps.py.
            In sync it shows chunks at once: the cost of blocking callbacks,
            not of real-time pacing.

Steady-state env steps/s: median of `training/sps` over the epochs after the
first two (upstream compiles its epoch twice, so its second epoch is slow).
Compile time: JAX's own tracing + lowering + XLA compile durations, per run.
CPU cost: process CPU seconds per million env steps over the same epochs (the
epoch plus the eval after it). On a shared machine other jobs stretch wall
time but hardly the CPU time a run itself burns, so this column is the steadier
view of what streaming costs; steps/s is the bar.

  python bench/overhead.py                       # inverted_pendulum, 2 rounds
  python bench/overhead.py --env ant --rounds 1  # heavier (ant compiles ~3 min on CPU)
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import statistics
import time

from brax import envs
from brax.training.agents.ppo import networks as ppo_networks
from brax.training.agents.ppo import train as upstream
import jax

from braxviewer import HeadlessViewer, WebViewerBatched
from braxviewer.brax.training.agents.ppo import train as ours

_COMPILE_EVENTS = (
  "/jax/core/compile/jaxpr_trace_duration",
  "/jax/core/compile/jaxpr_to_mlir_module_duration",
  "/jax/core/compile/backend_compile_duration",
)


class _CompileClock:
  def __init__(self):
    self.seconds = 0.0
    self.backend_compiles = 0
    jax.monitoring.register_event_duration_secs_listener(self._on)

  def _on(self, event, duration, **kwargs):
    del kwargs
    if event in _COMPILE_EVENTS:
      self.seconds += duration
    if event == _COMPILE_EVENTS[-1]:
      self.backend_compiles += 1

  def reset(self):
    self.seconds = 0.0
    self.backend_compiles = 0


def _cycling(viewer, cycle):
  """``viewer`` runs each epoch after the warm-up in the next mode of
  ``cycle`` (``viewer.next_epoch(i)``; the modes run: ``epoch_modes``)."""
  viewer.epoch_modes = []

  def next_epoch(index):
    mode = cycle[index % len(cycle)]
    viewer.set_mode(mode)
    viewer.epoch_modes.append(mode)

  viewer.next_epoch = next_epoch
  return viewer


def _viewer(kind: str, env, num_envs: int, cycle):
  if kind == "headless":
    return _cycling(
      HeadlessViewer(num_envs, mode=cycle[0], max_chunks=8), cycle
    )
  # the web viewer with no page open: what live costs with nobody watching
  viewer = WebViewerBatched(num_envs=num_envs, port=0, mode=cycle[0])
  viewer.run()
  viewer.init(env)
  return _cycling(viewer, cycle)


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--env", default="inverted_pendulum")
  p.add_argument("--backend", default="generalized")
  p.add_argument("--num-envs", type=int, default=128)
  p.add_argument("--view-envs", type=int, default=16)
  p.add_argument("--unroll-length", type=int, default=10)
  p.add_argument("--batch-size", type=int, default=128)
  p.add_argument("--num-minibatches", type=int, default=4)
  p.add_argument(
    "--steps-per-epoch", type=int, default=20, help="training steps per epoch"
  )
  p.add_argument("--epochs", type=int, default=8)
  p.add_argument("--rounds", type=int, default=2)
  p.add_argument(
    "--modes",
    default="off,live,sync",
    help="viewer modes cycled epoch by epoch in one run",
  )
  p.add_argument(
    "--viewer",
    choices=("headless", "web"),
    default="headless",
    help="headless: what the trainer pays; web: WebViewerBatched with no"
    " page open (use --modes off,live: sync needs a page)",
  )
  p.add_argument("--json", help="also write the results here")
  args = p.parse_args()

  env = envs.get_environment(args.env, backend=args.backend)
  per_step = args.batch_size * args.num_minibatches * args.unroll_length
  env_steps_per_epoch = per_step * args.steps_per_epoch
  cfg = dict(
    num_timesteps=per_step * args.steps_per_epoch * args.epochs,
    num_evals=args.epochs + 1,
    episode_length=200,
    num_envs=args.num_envs,
    batch_size=args.batch_size,
    num_minibatches=args.num_minibatches,
    unroll_length=args.unroll_length,
    num_updates_per_batch=2,
    num_eval_envs=16,
    normalize_observations=True,
    network_factory=functools.partial(
      ppo_networks.make_ppo_networks,
      policy_hidden_layer_sizes=(32, 32),
      value_hidden_layer_sizes=(32, 32),
    ),
  )
  clock = _CompileClock()
  modes = args.modes.split(",")
  names = ["upstream", "none", *modes]
  results = {
    k: {"sps": [], "cpu_s_per_m": [], "compile_s": [], "compiles": []}
    for k in names
  }

  def run(name, train_fn, seed, viewer=None):
    sps = []  # steps/s of epochs 1, 2, ...
    cpu = []  # process CPU seconds at each eval (step 0, after epoch 1, ...)

    def progress(step, metrics):
      if "eval/episode_reward" not in metrics:
        return  # the viewer's per-call heartbeat
      cpu.append(time.process_time())
      if "training/sps" in metrics:
        sps.append(metrics["training/sps"])
      if viewer is not None and len(sps) >= 2:
        viewer.next_epoch(len(sps) - 2)

    clock.reset()
    kw = {} if viewer is None else {"viewer": viewer}
    train_fn(environment=env, seed=seed, progress_fn=progress, **cfg, **kw)
    if hasattr(viewer, "close"):
      viewer.close()
    steady = sps[2:]  # epochs 1-2 hold the compiles (upstream: two)
    # CPU seconds per million env steps of epochs 3, 4, ... (+ their evals).
    cpu_steady = [
      (b - a) * 1e6 / env_steps_per_epoch for a, b in zip(cpu[2:], cpu[3:])
    ]
    if viewer is None:
      per_mode = {name: (steady, cpu_steady)}
    else:
      per_mode = {
        m: (
          [x for x, e in zip(steady, viewer.epoch_modes) if e == m],
          [x for x, e in zip(cpu_steady, viewer.epoch_modes) if e == m],
        )
        for m in modes
      }
    for mode, (values, cpu_values) in per_mode.items():
      res = results[mode]
      res["sps"].append(statistics.median(values))
      res["cpu_s_per_m"].append(statistics.median(cpu_values))
      res["compile_s"].append(clock.seconds)
      res["compiles"].append(clock.backend_compiles)
      print(
        f"round {seed} {mode:9s} steady {res['sps'][-1]:9.0f} steps/s"
        f" over {len(values)} epochs  cpu {res['cpu_s_per_m'][-1]:6.2f}"
        f" s/M steps  compile {clock.seconds:6.1f} s"
        f" ({clock.backend_compiles} XLA compiles)",
        flush=True,
      )

  runs = [
    lambda r: run("upstream", upstream.train, r),
    lambda r: run("none", ours.train, r),
    lambda r: run(
      "viewer", ours.train, r, _viewer(args.viewer, env, args.view_envs, modes)
    ),
  ]
  for r in range(args.rounds):
    # Rotate the order: the first run of a process also compiles JAX's small
    # helper programs, which should not count against one variant only.
    for i in range(len(runs)):
      runs[(i + r) % len(runs)](r)

  print()
  print(
    f"machine: {platform.machine()}, {jax.devices()[0].device_kind},"
    f" {jax.local_device_count()} device(s), jax {jax.__version__}"
  )
  print(
    f"env {args.env}/{args.backend}, {args.num_envs} envs, view"
    f" {args.view_envs}, {args.rounds} round(s) x {args.epochs} epochs of"
    f" {args.steps_per_epoch} training steps ({per_step} env steps each)"
  )
  ref = results.get("upstream")
  print(
    f"{'variant':9s} {'steps/s':>9s} {'x upstream':>10s}"
    f" {'cpu s/M':>8s} {'x upstream':>10s}"
    f" {'compile s':>9s} {'x upstream':>10s} {'compiles':>8s}"
  )

  def ratio(res, key):
    if not ref:
      return float("nan")
    return statistics.median([a / b for a, b in zip(res[key], ref[key])])

  for name, res in results.items():
    print(
      f"{name:9s} {statistics.median(res['sps']):9.0f}"
      f" {ratio(res, 'sps'):10.3f}"
      f" {statistics.median(res['cpu_s_per_m']):8.2f}"
      f" {ratio(res, 'cpu_s_per_m'):10.3f}"
      f" {statistics.median(res['compile_s']):9.1f}"
      f" {ratio(res, 'compile_s'):10.3f}"
      f" {statistics.median(res['compiles']):8.0f}"
    )
  if ref:
    print("per-round steps/s ratios to upstream (spread = noise):")
    for name, res in results.items():
      print(
        f"  {name:9s} "
        + " ".join(f"{a / b:.3f}" for a, b in zip(res["sps"], ref["sps"]))
      )
  if args.json:
    with open(args.json, "w") as f:
      json.dump({"args": vars(args), "results": results}, f, indent=1)


if __name__ == "__main__":
  main()
