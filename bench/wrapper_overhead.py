"""What braxviewer.wrap costs a custom jitted training loop.

The loop of demo/custom_loop.py (a ``lax.scan`` of --rollout env steps over
--num-envs brax envs, then a policy-gradient step) in three variants, each
compiled once, then timed in interleaved rounds so machine noise hits all
alike:

  none   the batched env as is
  off    braxviewer.wrap(env, viewer) with the viewer off: every step writes
         the first N envs' frame into the on-device buffer; every --chunk
         steps one tiny host call reads the mode (nothing else leaves)
  live   the same wrapped program (no recompile) with the viewer live: also
         one packed callback per chunk into a HeadlessViewer

Reports env steps/s (median over rounds of one --calls-call timing each),
the ratio to ``none``, process CPU seconds per million env steps (steadier
than wall time on a shared machine), the chunks received, and whether the
three loops computed the same bits.

  python bench/wrapper_overhead.py                   # inverted_pendulum
  python bench/wrapper_overhead.py --num-envs 512 --rounds 7
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import statistics
import sys
import time

import jax
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "demo"))
from custom_loop import batched_env, make_loop  # noqa: E402

from braxviewer import HeadlessViewer, wrap  # noqa: E402
from braxviewer.train.wrapper import KEY  # noqa: E402


def _inner(carry):
  """The carry without the wrapper's entry."""
  params, state, key = carry
  if KEY in state.info:
    info = {k: v for k, v in state.info.items() if k != KEY}
    state = state.replace(info=info)
  return params, state, key


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--env", default="inverted_pendulum")
  p.add_argument("--num-envs", type=int, default=128)
  p.add_argument("--view-envs", type=int, default=16)
  p.add_argument("--rollout", type=int, default=64)
  p.add_argument("--chunk", type=int, default=64)
  p.add_argument("--calls", type=int, default=10, help="calls per timing")
  p.add_argument("--rounds", type=int, default=5)
  args = p.parse_args()

  viewer = HeadlessViewer(num_envs=args.view_envs, mode="off", max_chunks=4)
  plain_env = batched_env(args.env)
  wrapped_env = wrap(
    batched_env(args.env), viewer, args.view_envs, chunk_length=args.chunk
  )
  loops = {
    "none": make_loop(plain_env, args.num_envs, args.rollout),
    "wrapped": make_loop(wrapped_env, args.num_envs, args.rollout),
  }
  carries = {}
  compile_s = {}
  for name, (init, update) in loops.items():
    t0 = time.perf_counter()
    carry = init(jax.random.PRNGKey(0))
    carry, _ = update(carry)
    jax.block_until_ready(carry)
    compile_s[name] = time.perf_counter() - t0
    carries[name] = carry

  # the same bits: one more call each from the same start, off and live
  finals = {}
  for variant, name, mode in (
    ("none", "none", "off"),
    ("off", "wrapped", "off"),
    ("live", "wrapped", "live"),
  ):
    viewer.set_mode(mode)
    out = loops[name][1](carries[name])
    finals[variant] = jax.block_until_ready(_inner(out[0]))
  same = all(
    all(
      np.array_equal(np.asarray(a), np.asarray(b))
      for a, b in zip(jax.tree.leaves(finals["none"]), jax.tree.leaves(f))
    )
    for f in (finals["off"], finals["live"])
  )

  steps_per_call = args.rollout * args.num_envs
  rates = {"none": [], "off": [], "live": []}
  cpu = {"none": [], "off": [], "live": []}
  chunks = {"off": 0, "live": 0}
  for _ in range(args.rounds):
    for variant in rates:
      name = "none" if variant == "none" else "wrapped"
      viewer.set_mode("live" if variant == "live" else "off")
      stream = wrapped_env.stream
      before = stream.chunks_sent if stream is not None else 0
      update, carry = loops[name][1], carries[name]
      t0, c0 = time.perf_counter(), time.process_time()
      for _ in range(args.calls):
        carry, _ = update(carry)
      jax.block_until_ready(carry)
      jax.effects_barrier()
      seconds = time.perf_counter() - t0
      cpu[variant].append(
        (time.process_time() - c0) / (steps_per_call * args.calls) * 1e6
      )
      carries[name] = carry
      rates[variant].append(steps_per_call * args.calls / seconds)
      if variant in chunks and stream is not None:
        chunks[variant] += stream.chunks_sent - before
  wrapped_env.close()

  base = statistics.median(rates["none"])
  result = {
    "machine": f"{platform.machine()}, {jax.device_count()} device(s)"
    f" ({jax.default_backend()}), {len(__import__('os').sched_getaffinity(0))}"
    " cores",
    "env": args.env,
    "num_envs": args.num_envs,
    "view_envs": args.view_envs,
    "rollout": args.rollout,
    "chunk": args.chunk,
    "compile_s": {k: round(v, 1) for k, v in compile_s.items()},
    "same_bits": same,
    "chunks_received": chunks,
  }
  for variant, values in rates.items():
    med = statistics.median(values)
    result[variant] = {
      "steps_per_s": round(med),
      "vs_none": round(med / base, 3),
      "spread": [round(min(values)), round(max(values))],
      "cpu_s_per_m_steps": round(statistics.median(cpu[variant]), 2),
      "cpu_spread": [round(min(cpu[variant]), 2), round(max(cpu[variant]), 2)],
      "cpu_vs_none": round(
        statistics.median(cpu[variant]) / statistics.median(cpu["none"]), 3
      ),
    }
  print(json.dumps(result, indent=1))


if __name__ == "__main__":
  main()
