"""A PPO training streams to a viewer server in another process, and
survives the server's death.

The server is ``python -m braxviewer serve`` started as a user starts it;
the training connects with ``braxviewer.connect``. Mid-run the server is
killed (SIGKILL) and started again on the same port: the training finishes
with the params of a training without viewer, says so once, and streams to
the new server, whose page (headless Chromium) shows the run's chunks.
"""

from __future__ import annotations

import re
import socket
import warnings

from brax import envs
import numpy as np
import pytest
from tiny_training import TINY, flat_params, train_and_record

import braxviewer
from braxviewer.brax.training.agents.ppo import train as ppo
from braxviewer.remote.client import ServerLost

pytestmark = pytest.mark.slow

# 6 epochs: room for the server to die after one and come back after two
CONFIG = {**TINY, "num_timesteps": 1920, "num_evals": 7}


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _serve(spawn, port: int):
  child = spawn(["-m", "braxviewer", "serve", "--port", str(port)])
  child.wait_for("training runs connect", timeout=120)
  return child


def test_training_outlives_a_killed_server_and_streams_to_the_next(
  spawn, page, open_page, wait_until
):
  env = envs.get_environment("inverted_pendulum", backend="generalized")
  port = _free_port()
  server = _serve(spawn, port)
  viewer = braxviewer.connect(f"127.0.0.1:{port}", num_envs=4, run="pendulum")
  viewer.init(env)
  assert viewer.wait_connected(30)
  servers = [server]
  seen = []

  def progress(step: int, metrics) -> None:
    seen.append(step)
    if len(seen) == 2:  # one epoch streamed: kill the server
      servers[0].kill()
      assert wait_until(lambda: not viewer.connected, timeout=30)
    elif len(seen) == 4:  # two epochs without: a new server
      servers.append(_serve(spawn, port))
      assert wait_until(lambda: viewer.connected, timeout=60)
      assert wait_until(lambda: viewer.mode == "live", timeout=30)

  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    records = []
    _, params, _ = ppo.train(
      environment=env,
      viewer=viewer,
      progress_fn=lambda s, m: (records.append((s, m)), progress(s, m)),
      **CONFIG,
    )
  lost = [w for w in caught if issubclass(w.category, ServerLost)]
  assert len(lost) == 1, [str(w.message) for w in caught]
  assert len(servers) == 2 and viewer.stats.connects == 2
  assert viewer.stats.chunks_sent > 0

  # the viewer never changed what was learned

  alone, rewards, _ = train_and_record(ppo.train, env, CONFIG)
  assert np.array_equal(flat_params(params), alone)
  assert [float(m["eval/episode_reward"]) for _, m in records] == rewards

  # the new server's page shows the run and its chunks
  open_page(page, f"http://127.0.0.1:{port}/")
  assert wait_until(lambda: "pendulum" in page.content(), timeout=30)

  def chunks_on_page() -> int:
    found = re.findall(r"Chunk\s+(\d+)\s*/\s*(\d+)", page.inner_text("body"))
    return max((int(total) for _, total in found), default=0)

  assert wait_until(lambda: chunks_on_page() > 0, timeout=30), page.inner_text(
    "body"
  )[:2000]
  viewer.close()
  servers[-1].interrupt()
  assert servers[-1].finish(timeout=30) in (0, 130)
