"""Soak: a live training under a mix of hostile clients, minutes long.

    python bench/soak.py [--timesteps 1500000] [--view-envs 16]

Trains inverted_pendulum (generalized, 32 envs) with braxviewer's PPO and a
WebViewerBatched streaming 16 envs, while threads keep attacking the page's
server until training ends:

  garbage     malformed and 8 MB websocket payloads from a local client
  crowd       hundreds of short websocket connections
  slowloris   sockets that send half an HTTP request, a byte now and then
  foreign     handshakes claiming another Origin or Host (must be refused)
  controls    a page sending NaN / huge / unknown control values
  held sync   a page that switches to sync, pauses, and goes away
  traversal   HTTP requests for ../ paths

It first trains with viewer=None (same seed), then under attack, and prints:
whether both finished, whether their params are bit-identical, the warnings
the viewer printed (one per kind at most), refused handshakes, and threads,
sockets, open fds and RSS before the viewer started (JAX warm) and after it
closed (RSS then also holds the tapped training program's compile).
"""

from __future__ import annotations

import argparse
import collections
import os
import socket
import threading
import time
import warnings

from brax import envs
import jax
import msgspec
import numpy as np
import soak_kit
import viser
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from braxviewer import WebViewerBatched
from braxviewer.brax.training.agents.ppo import train as ppo


def sockets() -> int:
  n = 0
  for fd in os.listdir("/proc/self/fd"):
    try:
      n += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
    except OSError:
      pass
  return n


def rss_mb() -> float:
  with open("/proc/self/status") as f:
    for line in f:
      if line.startswith("VmRSS:"):
        return int(line.split()[1]) / 1024.0
  return float("nan")


def snapshot() -> dict:
  return dict(
    threads=threading.active_count(),
    sockets=sockets(),
    fds=len(os.listdir("/proc/self/fd")),
    rss_mb=rss_mb(),
  )


CAMERA = {
  "type": "ViewerCameraMessage",
  "wxyz": [1.0, 0.0, 0.0, 0.0],
  "position": [0.0, -3.0, 2.0],
  "fov": 1.3,
  "image_height": 700,
  "image_width": 1200,
  "near": 0.01,
  "far": 100.0,
  "look_at": [0.0, 0.0, 0.0],
  "up_direction": [0.0, 0.0, 1.0],
}


class Attacks:
  """The hostile mix, one thread per kind, until :meth:`stop`."""

  def __init__(self, viewer: WebViewerBatched):
    self.viewer = viewer
    self.port = viewer.port
    self.url = f"ws://127.0.0.1:{viewer.port}"
    self.origin = f"http://127.0.0.1:{viewer.port}"
    self.done = threading.Event()
    self.counts: collections.Counter = collections.Counter()
    self._threads = [
      threading.Thread(target=self._loop, args=(fn,), daemon=True)
      for fn in (
        self.garbage,
        self.crowd,
        self.slowloris,
        self.foreign,
        self.controls,
        self.held_sync,
        self.traversal,
      )
    ]

  def start(self) -> None:
    for t in self._threads:
      t.start()

  def stop(self) -> None:
    self.done.set()
    for t in self._threads:
      t.join(timeout=30)

  def _loop(self, fn) -> None:
    while not self.done.is_set():
      try:
        fn()
      except Exception as err:  # count it, go on attacking
        self.counts[f"{fn.__name__}: {type(err).__name__}"] += 1
      self.done.wait(0.2)

  def _page(self):
    ws = connect(
      self.url,
      subprotocols=[f"viser-v{viser.__version__}"],
      origin=self.origin,
      open_timeout=10,
      max_size=None,
    )
    ws.send(msgspec.msgpack.encode(CAMERA))

    def drain():  # a page reads what it is sent (else the server drops it)
      try:
        while True:
          ws.recv()
      except Exception:
        pass

    threading.Thread(target=drain, daemon=True).start()
    return ws

  def garbage(self) -> None:
    for payload in (
      b"\x00\xffgarbage",
      "text",
      os.urandom(8 << 20),
      b"\x82\xa4type\xb0GuiUpdateMessage\xa4uuid\xa1x",
    ):
      try:
        with self._page() as ws:
          ws.send(payload)
          ws.recv(timeout=2)
      except Exception:
        pass
      self.counts["garbage payloads"] += 1

  def crowd(self) -> None:
    soak_kit.crowd(self.port, self.counts, n=50)

  def slowloris(self) -> None:
    soak_kit.slowloris(self.port, self.counts, self.done)

  def foreign(self) -> None:
    for origin in (
      "http://evil.example.com",
      "null",
      f"http://127.0.0.1:{self.port + 1}",
    ):
      try:
        connect(
          self.url,
          subprotocols=[f"viser-v{viser.__version__}"],
          origin=origin,
          open_timeout=10,
        ).close()
        self.counts["foreign ACCEPTED"] += 1
      except InvalidStatus:
        self.counts["foreign refused"] += 1

  def controls(self) -> None:
    panels = self.viewer.page.panels
    with self._page() as ws:
      time.sleep(0.3)
      for handle, value in (
        (panels.timeline.speed, 1e308),
        (panels.timeline.speed, float("nan")),
        (panels.mode, "bogus"),
        (panels.env, float("nan")),
        (panels.timeline.timeline, -1e12),
        (panels.timeline.goto, 1e300),
      ):
        ws.send(
          msgspec.msgpack.encode(
            {
              "type": "GuiUpdateMessage",
              "uuid": handle._impl.uuid,
              "updates": {"value": value},
            }
          )
        )
        self.counts["bad control values"] += 1
      time.sleep(0.5)
    self.done.wait(5.0)

  def _send(self, ws, handle, value) -> None:
    ws.send(
      msgspec.msgpack.encode(
        {
          "type": "GuiUpdateMessage",
          "uuid": handle._impl.uuid,
          "updates": {"value": value},
        }
      )
    )

  def held_sync(self) -> None:
    """A page switches to sync, pauses (training waits), and goes away; a
    few seconds later a page switches back to live. Its pause must end
    with it (other pages may be watching): the training never waits on a
    page that is gone."""
    panels = self.viewer.page.panels
    with self._page() as ws:
      time.sleep(0.3)
      self._send(ws, panels.mode, "sync")
      self._send(ws, panels.timeline.play, False)
      time.sleep(1.0)  # then the page goes away, sync still paused
    self.counts["held syncs abandoned"] += 1
    if self.done.wait(3.0):
      return
    with self._page() as ws:
      time.sleep(0.3)
      self._send(ws, panels.mode, "live")
      time.sleep(0.5)
    self.done.wait(15.0)

  def traversal(self) -> None:
    for path in ("/../../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd"):
      with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        reply = s.recv(64)
        ok = reply.startswith(b"HTTP/1.1 404") or reply.startswith(
          b"HTTP/1.1 403"
        )
        self.counts["traversal refused" if ok else "traversal SERVED"] += 1
    self.done.wait(2.0)


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--timesteps", type=int, default=1_500_000)
  p.add_argument("--view-envs", type=int, default=16)
  p.add_argument("--seed", type=int, default=1)
  args = p.parse_args()
  env = envs.get_environment("inverted_pendulum", backend="generalized")
  config = soak_kit.ppo_config(args.timesteps, args.seed)
  print(soak_kit.machine_line(args.timesteps))
  started = time.time()
  _, alone, _ = ppo.train(environment=env, viewer=None, **config)
  alone_s = time.time() - started
  before = snapshot()  # JAX warm: what follows is the viewer's
  viewer = WebViewerBatched(num_envs=args.view_envs, port=0)
  viewer.run()
  viewer.init(env)
  attacks = Attacks(viewer)
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    started = time.time()
    attacks.start()
    try:
      _, watched, _ = ppo.train(environment=env, viewer=viewer, **config)
    finally:
      attacks.stop()
      stats = viewer.stats()
      viewer.close()
    watched_s = time.time() - started
  time.sleep(2.0)
  after = snapshot()
  same = all(
    np.array_equal(np.asarray(a), np.asarray(b))
    for a, b in zip(jax.tree.leaves(watched), jax.tree.leaves(alone))
  )
  print(
    f"training under attack: finished in {watched_s:.0f} s; alone:"
    f" {alone_s:.0f} s; params bit-identical: {same}"
  )
  print(
    f"viewer: {stats['chunks_received']} chunks received,"
    f" {stats['frames_shown']} frames shown, failed: {viewer.failed}"
  )
  print("attacks:", dict(sorted(attacks.counts.items())))
  ours = [str(w.message) for w in caught if "braxviewer" in str(w.message)]
  print(f"warnings printed: {len(ours)}")
  for message in ours:
    print("  -", message[:150])
  print(f"before: {before}")
  print(f"after:  {after}")


if __name__ == "__main__":
  main()
