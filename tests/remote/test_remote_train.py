"""PPO trainings stream to a viewer server in another process, and survive
the server's death.

The server is ``python -m braxviewer serve`` started as a user starts it;
two trainings connect with ``braxviewer.connect`` at once. Mid-run the
server is killed (SIGKILL) and started again on the same port: the
trainings finish with the params of a training without viewer, each says so
once, and stream to the new server, whose page (headless Chromium) lists
both runs, shows the chosen run's chunks and overlays both runs' curves.
"""

from __future__ import annotations

import re
import socket
import threading
import warnings

from brax import envs
from fake_server import SilentServer
import numpy as np
import pytest
from tiny_training import TINY, flat_params, train_and_record

import braxviewer
from braxviewer.brax.training.agents.ppo import train as ppo
from braxviewer.remote.client import ServerLost, ServerSlow

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


def test_two_trainings_outlive_a_killed_server_and_stream_to_the_next(
  spawn, page, open_page, wait_until
):
  """Two PPO trainings stream into one server at once, a third trains
  without viewer alongside (same config, same seed). The server is killed
  one epoch into the first run and a new one started two epochs later."""
  env = envs.get_environment("inverted_pendulum", backend="generalized")
  port = _free_port()
  servers = [_serve(spawn, port)]
  viewers = {
    name: braxviewer.connect(f"127.0.0.1:{port}", num_envs=4, run=name)
    for name in ("pendulum a", "pendulum b")
  }
  for viewer in viewers.values():
    viewer.init(env)
    assert viewer.wait_connected(30)
  first = viewers["pendulum a"]
  seen = []

  def kill_and_restart(step: int, metrics) -> None:
    seen.append(step)
    if len(seen) == 2:  # one epoch streamed: kill the server
      servers[0].kill()
      assert wait_until(lambda: not first.connected, timeout=30)
    elif len(seen) == 4:  # two epochs without: a new server
      servers.append(_serve(spawn, port))
      assert wait_until(lambda: first.connected, timeout=60)
      assert wait_until(lambda: first.mode == "live", timeout=30)

  results = {}

  def train(name, viewer, progress=lambda s, m: None) -> None:
    records = []
    kw = {} if viewer is None else {"viewer": viewer}
    _, params, _ = ppo.train(
      environment=env,
      progress_fn=lambda s, m: (records.append(m), progress(s, m)),
      **CONFIG,
      **kw,
    )
    results[name] = (flat_params(params), records)

  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    others = [
      threading.Thread(target=train, args=("alone", None)),
      threading.Thread(target=train, args=("b", viewers["pendulum b"])),
    ]
    for thread in others:
      thread.start()
    train("a", first, kill_and_restart)
    for thread in others:
      thread.join(600)
  assert set(results) == {"a", "b", "alone"}
  lost = [w for w in caught if issubclass(w.category, ServerLost)]
  assert len(lost) == 2, [str(w.message) for w in caught]  # one per run
  assert len(servers) == 2 and first.stats.connects == 2
  # without a server the mode is off: the tap sent nothing, nothing dropped
  assert first.stats.chunks_sent > 0 and first.stats.chunks_dropped == 0

  # the viewers never changed what was learned
  alone, alone_records = results["alone"]
  for name in ("a", "b"):
    params, records = results[name]
    assert np.array_equal(params, alone), name
    rewards = [
      m["eval/episode_reward"] for m in records if "eval/episode_reward" in m
    ]
    assert rewards == [
      m["eval/episode_reward"]
      for m in alone_records
      if "eval/episode_reward" in m
    ]

  # the new server's page lists both runs, shows the first one's chunks and
  # overlays both runs' curves
  assert wait_until(lambda: viewers["pendulum b"].connected, timeout=60)
  open_page(page, f"http://127.0.0.1:{port}/")
  page.get_by_role("tab", name="Live").click()
  run_box = page.get_by_role("combobox", name="Run")
  run_box.wait_for(timeout=30000)
  run_box.click()
  for name in viewers:
    page.get_by_role("option", name=name, exact=True).wait_for(timeout=30000)
  page.get_by_role("option", name="pendulum a", exact=True).click()

  def chunks_on_page() -> int:
    found = re.findall(r"Chunk\s+(\d+)\s*/\s*(\d+)", page.inner_text("body"))
    return max((int(total) for _, total in found), default=0)

  assert wait_until(lambda: chunks_on_page() > 0, timeout=30), page.inner_text(
    "body"
  )[:2000]
  page.get_by_role("tab", name="Training").click()
  chart = page.locator(".uplot").filter(has_text="Eval reward")
  chart.wait_for(timeout=30000)
  for name in viewers:
    assert wait_until(
      lambda n=name: chart.get_by_text(f"{n} · episode_reward").count() > 0,
      timeout=30,
    ), name
  for viewer in viewers.values():
    viewer.close()
  servers[-1].interrupt()
  assert servers[-1].finish(timeout=30) in (0, 130)


def test_a_server_that_asks_for_sync_and_never_answers_never_holds_training():
  """A fake server welcomes the run, asks for sync and never shows a
  chunk: the training waits once (a few seconds), warns once, goes on
  without waiting, and learns the params of a training without viewer."""
  env = envs.get_environment("inverted_pendulum", backend="generalized")
  fake = SilentServer()
  viewer = braxviewer.connect(
    f"127.0.0.1:{fake.port}", num_envs=4, run="held", token="x" * 16
  )
  try:
    viewer.init(env)
    assert viewer.wait_connected(30)
    with warnings.catch_warnings(record=True) as caught:
      warnings.simplefilter("always")
      held = train_and_record(ppo.train, env, TINY, viewer=viewer)
  finally:
    viewer.close()
    fake.close()
  alone = train_and_record(ppo.train, env, TINY)
  slow = [w for w in caught if issubclass(w.category, ServerSlow)]
  assert len(slow) == 1, [str(w.message) for w in caught]
  assert fake.chunks > 1  # it streamed on, without waiting
  assert np.array_equal(held[0], alone[0])
  assert held[1] == alone[1]  # eval rewards
