"""What one streamed chunk costs the device program: tap.emit on vs off.

A jitted loop runs K iterations of fixed work; each iteration emits a chunk
shaped like a training step's (T steps x N envs: qpos, reward, done,
truncation, reward terms) through ``tap.emit``, with the flag off or on. The
difference per iteration is the full cost of one callback as the trainer pays
it (XLA's hand-off, JAX placing the arrays on the host, our sink), measured
as the minimum over repeats, so machine noise hardly moves it. For
comparison: no tap at all (what ``off`` must match), and the same chunk sent
as separate arrays with a plain
``jax.debug.callback`` (what a straightforward tap does).

The trainer makes one callback per training step, so the live overhead is
about (cost per callback) / (time of one training step).

  python bench/callback_cost.py                 # 16 ants-sized envs, T=40
  python bench/callback_cost.py --envs 64 --nq 28 --steps 80
"""

from __future__ import annotations

import argparse
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from braxviewer.train import tap


def _chunk(x, steps, envs, nq, terms):
  base = jnp.broadcast_to(x[0, 0], (steps, envs))
  return {
    "qpos": jnp.broadcast_to(x[0, :1], (steps, envs, nq)) * 1.0,
    "reward": base,
    "done": base * 0,
    "truncation": base * 0,
    "metrics": {f"term{i}": base + i for i in range(terms)},
  }


def _program(kind, iters, args, sink):
  weights = jnp.eye(256) * 0.5

  def body(i, carry):
    x, flag = carry
    x = jnp.tanh(x @ weights)  # stand-in for the training step's work
    chunk = _chunk(x, args.steps, args.envs, args.nq, args.terms)
    hi, lo = jnp.uint32(0), i.astype(jnp.uint32)
    if kind == "tap.emit (packed)":
      tap.emit(flag, chunk, sink, hi, lo)
    elif kind == "debug.callback (per array)":
      jax.lax.cond(
        flag > 0,
        lambda c: jax.debug.callback(sink, c, hi, lo),
        lambda c: None,
        chunk,
      )
    return x, flag

  @jax.jit
  def run(x, flag):
    return jax.lax.fori_loop(0, iters, body, (x, flag))[0]

  return run


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--envs", type=int, default=16)
  p.add_argument("--nq", type=int, default=15, help="15: ant")
  p.add_argument(
    "--steps",
    type=int,
    default=40,
    help="env steps per chunk (unrolls x unroll_length)",
  )
  p.add_argument("--terms", type=int, default=6, help="reward terms")
  p.add_argument("--iters", type=int, default=200)
  p.add_argument("--repeats", type=int, default=7)
  args = p.parse_args()

  received = []

  def sink(chunk, hi, lo):
    received.append(np.asarray(chunk["qpos"]).shape)

  x = jnp.ones((64, 256), jnp.float32)
  print(
    f"machine: {platform.machine()}, {jax.devices()[0].device_kind},"
    f" jax {jax.__version__}; chunk: {args.steps} steps x {args.envs}"
    f" envs, nq {args.nq}, {args.terms} reward terms"
  )
  print(
    f"{'how':28s} {'off ms/iter':>11s} {'on ms/iter':>10s}"
    f" {'ms per callback':>15s}"
  )
  for kind in ("no tap", "tap.emit (packed)", "debug.callback (per array)"):
    run = _program(kind, args.iters, args, sink)
    for flag in (0, 1):  # compile both paths' first run out of the timing
      run(x, jnp.int32(flag)).block_until_ready()
    times = {0: [], 1: []}
    for _ in range(args.repeats):
      for flag in (0, 1):
        t0 = time.perf_counter()
        run(x, jnp.int32(flag)).block_until_ready()
        jax.effects_barrier()
        times[flag].append(time.perf_counter() - t0)
    off = min(times[0]) / args.iters * 1e3
    on = min(times[1]) / args.iters * 1e3
    print(f"{kind:28s} {off:11.3f} {on:10.3f} {on - off:15.3f}")
  assert received and received[-1] == (args.steps, args.envs, args.nq)


if __name__ == "__main__":
  main()
