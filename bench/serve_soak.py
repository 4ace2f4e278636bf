"""Soak: a live training into ``braxviewer serve`` under a hostile mix.

    python bench/serve_soak.py [--timesteps 600000] [--view-envs 16]

Starts ``python -m braxviewer serve --record-dir DIR --run-ttl 20s`` as a
user does, trains inverted_pendulum (generalized, 32 envs) with
braxviewer's PPO streaming live into it through ``braxviewer.connect``
(the shown run), while threads attack the server on loopback until the
training ends (each kind bounded in count and rate):

  no token     training-socket handshakes without the token, a wrong one,
               a prefix of it, non-ASCII (must be 403)
  paths        models whose asset names are paths (/abs, ../, a/../../,
               NUL, 300 bytes, C:) aimed at files outside the record dir
  stranger     connections that take the victim's run name without its key,
               then send chunks, a progress index of 10**9, a Start with a
               wrong nq, an End (each must land in a run of their own)
  budget       a run's own connection asking num_envs=100000, nq off the
               model, chunks of the wrong shape
  garbage      non-messages, truncated messages, a 4 GB length prefix, 8 MB
               of noise after a hello
  crowd        hundreds of short TCP connections
  slowloris    sockets that send half an HTTP request, a byte now and then

It first trains with viewer=None (same seed), then under attack, and prints
whether the params are bit-identical, the attack counts (refused vs
ACCEPTED), the victim's recorded chunks over time (the shown run's frames
keep arriving), the server's RSS and CPU over the soak, and whether any
file appeared outside the record dir.
"""

from __future__ import annotations

import argparse
import collections
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings

from brax import envs
import jax
import mujoco
import numpy as np
import soak_kit
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

import braxviewer
from braxviewer.brax.training.agents.ppo import train as ppo
from braxviewer.core.frames import FrameChunk
from braxviewer.record import model_store
from braxviewer.record.reader import Recording
from braxviewer.remote import token_file, wire
from braxviewer.testing.factories import stream_info
from braxviewer.testing.synthetic import PUCK_XML

VICTIM = "soak-victim"


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def proc_stat(pid: int) -> tuple:
  """(RSS MB, CPU seconds) of process ``pid``."""
  with open(f"/proc/{pid}/status") as f:
    rss = next(int(x.split()[1]) for x in f if x.startswith("VmRSS:"))
  with open(f"/proc/{pid}/stat") as f:
    fields = f.read().rsplit(")", 1)[1].split()
  ticks = os.sysconf("SC_CLK_TCK")
  return rss / 1024.0, (int(fields[11]) + int(fields[12])) / ticks


def puck_chunk(n: int, seq: int, nq: int = 8) -> FrameChunk:
  t = 10
  return FrameChunk(
    seq=seq,
    source="train",
    env_steps=10**9,
    dt=0.01,
    reward=np.zeros((t, n)),
    done=np.zeros((t, n)),
    truncation=np.zeros((t, n)),
    metrics={},
    wall_time=time.time(),
    qpos=np.full((t, n, nq), 1e6),
  )


class Attacks:
  """The hostile mix, one thread per kind, until :meth:`stop`."""

  def __init__(self, port: int, token: str, target_dir: str):
    self.port = port
    self.token = token
    self.uri = f"ws://127.0.0.1:{port}{wire.PATH}"
    self.target_dir = target_dir
    self.mjb = model_store.capture(mujoco.MjModel.from_xml_string(PUCK_XML)).mjb
    self.done = threading.Event()
    self.counts: collections.Counter = collections.Counter()
    self._threads = [
      threading.Thread(target=self._loop, args=(fn, limit), daemon=True)
      for fn, limit in (
        (self.no_token, 200),
        (self.paths, 30),
        (self.stranger, 40),
        (self.budget, 40),
        (self.garbage, 40),
        (self.crowd, 40),
        (self.slowloris, 10),
      )
    ]

  def start(self) -> None:
    for t in self._threads:
      t.start()

  def stop(self) -> None:
    self.done.set()
    for t in self._threads:
      t.join(timeout=30)

  def _loop(self, fn, limit: int) -> None:
    for _ in range(limit):
      if self.done.is_set():
        return
      try:
        fn()
      except Exception as err:  # count it, go on attacking
        self.counts[f"{fn.__name__}: {type(err).__name__}"] += 1
      self.done.wait(0.5)

  def _run(self, name: str, key: str):
    ws = ws_connect(
      self.uri,
      additional_headers={"Authorization": f"Bearer {self.token}"},
      open_timeout=10,
      max_size=wire.MAX_MESSAGE_BYTES,
    )
    ws.send(wire.encode(wire.Hello(name, True, "attacker", 666, key)))
    welcome = wire.decode(ws.recv(timeout=10))
    assert isinstance(welcome, wire.Welcome)
    return ws, welcome

  def _rejected(self, ws) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
      message = wire.decode(ws.recv(timeout=deadline - time.monotonic()))
      if isinstance(message, wire.Rejected):
        return True
    return False

  def no_token(self) -> None:
    for headers in (
      {},
      {"Authorization": "Bearer wrong-token"},
      {"Authorization": f"Bearer {self.token[:-2]}"},
      {"Authorization": "Bearer tökén"},
    ):
      try:
        ws_connect(
          self.uri, additional_headers=headers, open_timeout=10
        ).close()
        self.counts["no token ACCEPTED"] += 1
      except InvalidStatus as err:
        ok = err.response.status_code == 403
        self.counts["no token refused" if ok else "no token: other status"] += 1

  def paths(self) -> None:
    target = os.path.join(self.target_dir, "evil.png")
    names = (
      target,
      "../../../../" + target.lstrip("/"),
      "a/../../evil.png",
      "nul\x00.png",
      "x" * 300,
      "C:evil.png",
      "C:\\evil.png",
    )
    ws, _ = self._run(f"paths-{secrets.token_hex(3)}", secrets.token_hex(8))
    with ws:
      for name in names:
        ws.send(wire.encode(wire.Model(self.mjb, "<mujoco/>", {name: b"EVIL"})))
        refused = self._rejected(ws)
        self.counts["path refused" if refused else "path ACCEPTED"] += 1

  def stranger(self) -> None:
    ws, welcome = self._run(VICTIM, secrets.token_hex(8))
    with ws:
      joined = welcome.run == VICTIM
      self.counts["stranger JOINED" if joined else "stranger apart"] += 1
      ws.send(wire.encode(wire.Chunk(puck_chunk(16, 0))))
      ws.send(wire.encode(wire.Progress(10**9, {"x": 1e9}, index=10**9)))
      ws.send(wire.encode(wire.Start(stream_info(16, nq=99))))
      ws.send(wire.encode(wire.End()))
      time.sleep(0.2)

  def budget(self) -> None:
    ws, _ = self._run(f"budget-{secrets.token_hex(3)}", secrets.token_hex(8))
    with ws:
      ws.send(wire.encode(wire.Model(self.mjb)))
      for message in (
        wire.Start(stream_info(100_000)),
        wire.Start(stream_info(4, nq=9)),
      ):
        ws.send(wire.encode(message))
        ok = self._rejected(ws)
        self.counts["over budget refused" if ok else "budget ACCEPTED"] += 1
      ws.send(wire.encode(wire.Start(stream_info(4))))
      ws.send(wire.encode(wire.Chunk(puck_chunk(4, 0, nq=11))))
      ok = self._rejected(ws)
      self.counts["bad shape refused" if ok else "bad shape ACCEPTED"] += 1

  def garbage(self) -> None:
    for payload in (
      b"\x00\xffgarbage",
      wire.encode(wire.Progress(1, {"x": 1.0}))[:-3],
      b"\xc6\xff\xff\xff\xff",  # msgpack bin32 claiming 4 GB
      os.urandom(8 << 20),
    ):
      try:
        ws, _ = self._run(f"junk-{secrets.token_hex(3)}", secrets.token_hex(8))
        with ws:
          ws.send(payload)
          ws.recv(timeout=5)
      except Exception:
        pass
      self.counts["garbage payloads"] += 1

  def crowd(self) -> None:
    soak_kit.crowd(self.port, self.counts)

  def slowloris(self) -> None:
    soak_kit.slowloris(self.port, self.counts, self.done)


def recorded_chunks(path: str) -> int:
  try:
    with Recording(path) as rec:
      return len(rec.chunks("train"))
  except Exception:
    return -1


def main() -> None:
  p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
  p.add_argument("--timesteps", type=int, default=600_000)
  p.add_argument("--view-envs", type=int, default=16)
  p.add_argument("--seed", type=int, default=1)
  args = p.parse_args()
  env = envs.get_environment("inverted_pendulum", backend="generalized")
  config = soak_kit.ppo_config(args.timesteps, args.seed)
  print(soak_kit.machine_line(args.timesteps))
  started = time.time()
  _, alone, _ = ppo.train(environment=env, viewer=None, **config)
  alone_s = time.time() - started

  work = tempfile.mkdtemp(prefix="serve-soak-")
  record_dir = os.path.join(work, "runs")
  port = free_port()
  server = subprocess.Popen(
    [
      sys.executable,
      "-m",
      "braxviewer",
      "serve",
      "--port",
      str(port),
      "--record-dir",
      record_dir,
      "--run-ttl",
      "20s",
    ],
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    text=True,
  )
  deadline = time.monotonic() + 120
  token = None
  while token is None and time.monotonic() < deadline:
    token = token_file.read(port)
    time.sleep(0.2)
  assert token is not None, "the server did not start"
  viewer = braxviewer.connect(
    f"127.0.0.1:{port}", num_envs=args.view_envs, run=VICTIM
  )
  viewer.init(env)
  assert viewer.wait_connected(30)
  attacks = Attacks(port, token, work)
  samples = []  # (seconds, RSS MB, CPU s, victim's recorded chunks)
  t0 = time.time()
  rss0, cpu0 = proc_stat(server.pid)
  stop_sampling = threading.Event()

  def sample() -> None:
    while not stop_sampling.wait(5.0):
      rss, cpu = proc_stat(server.pid)
      chunks = recorded_chunks(os.path.join(record_dir, VICTIM))
      samples.append((time.time() - t0, rss, cpu - cpu0, chunks))

  sampler = threading.Thread(target=sample, daemon=True)
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    sampler.start()
    attacks.start()
    try:
      _, watched, _ = ppo.train(environment=env, viewer=viewer, **config)
    finally:
      attacks.stop()
      stop_sampling.set()
      sampler.join(10)
      viewer.close()
    watched_s = time.time() - t0
  rss1, cpu1 = proc_stat(server.pid)
  time.sleep(25.0)  # the attackers' runs expire (--run-ttl 20s)
  rss2, _ = proc_stat(server.pid)
  server.send_signal(2)
  try:
    _, err = server.communicate(timeout=30)
  except subprocess.TimeoutExpired:
    server.kill()
    _, err = server.communicate()
  err = err or ""
  same = all(
    np.array_equal(np.asarray(a), np.asarray(b))
    for a, b in zip(jax.tree.leaves(watched), jax.tree.leaves(alone))
  )
  outside = sorted(
    os.path.relpath(os.path.join(d, f), work)
    for d, _, files in os.walk(work)
    for f in files
    if not os.path.join(d, f).startswith(record_dir + os.sep)
  )
  print(
    f"training under attack: {watched_s:.0f} s (alone {alone_s:.0f} s);"
    f" params bit-identical to viewer=None: {same}"
  )
  print(
    f"run {VICTIM!r}: {viewer.stats.chunks_sent} chunks sent,"
    f" {viewer.stats.chunks_dropped} dropped,"
    f" {recorded_chunks(os.path.join(record_dir, VICTIM))} recorded"
  )
  print("attacks:", dict(sorted(attacks.counts.items())))
  print("victim's recorded chunks, server RSS and CPU every 5 s:")
  for t, rss, cpu, chunks in samples:
    print(
      f"  {t:5.0f} s  chunks {chunks:5d}  RSS {rss:6.0f} MB  CPU {cpu:6.1f} s"
    )
  print(
    f"server: RSS {rss0:.0f} MB before, {rss1:.0f} MB at the end,"
    f" {rss2:.0f} MB after the attackers' runs expired; CPU"
    f" {cpu1 - cpu0:.1f} s over {watched_s:.0f} s"
    f" ({(cpu1 - cpu0) / watched_s:.0%} of one core)"
  )
  print(f"files outside the record dir: {outside or 'none'}")
  print(f"the server's stderr: {len(err.splitlines())} lines")
  for line in err.splitlines()[:12]:
    print("  |", line[:160])
  ours = [str(w.message) for w in caught if "braxviewer" in str(w.message)]
  print(f"warnings in the training: {len(ours)}")
  for message in ours:
    print("  -", message[:160])


if __name__ == "__main__":
  main()
