"""What the two soaks share (bench/soak.py: the in-process page;
bench/serve_soak.py: the viewer server): the training they run, the line
that says on what machine, and the attacks on the port itself."""

from __future__ import annotations

import collections
import functools
import os
import platform
import socket
import threading

from brax.training.agents.ppo import networks as ppo_networks
import jax


def ppo_config(timesteps: int, seed: int) -> dict:
  """inverted_pendulum (generalized), 32 envs: a training of minutes."""
  return dict(
    num_timesteps=timesteps,
    num_evals=4,
    episode_length=500,
    num_envs=32,
    batch_size=32,
    num_minibatches=4,
    unroll_length=20,
    num_updates_per_batch=2,
    seed=seed,
    normalize_observations=True,
    network_factory=functools.partial(
      ppo_networks.make_ppo_networks,
      policy_hidden_layer_sizes=(32, 32),
      value_hidden_layer_sizes=(32, 32),
    ),
    progress_bar=False,
  )


def machine_line(timesteps: int) -> str:
  return (
    f"machine: {platform.machine()}, {os.cpu_count()} CPUs, jax"
    f" {jax.__version__}; {timesteps:,} env steps per training"
  )


def crowd(port: int, counts: collections.Counter, n: int = 25) -> None:
  """``n`` TCP connections, opened and closed at once."""
  for _ in range(n):
    with socket.create_connection(("127.0.0.1", port), timeout=5):
      pass
    counts["crowd connections"] += 1


def slowloris(
  port: int, counts: collections.Counter, done: threading.Event
) -> None:
  """20 sockets that send half an HTTP request, then a byte a second."""
  socks = []
  for _ in range(20):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    socks.append(s)
  for _ in range(10):
    if done.wait(1.0):
      break
    for s in socks:
      try:
        s.sendall(b"X")
      except OSError:
        pass
  for s in socks:
    s.close()
  counts["slowloris sockets"] += len(socks)
