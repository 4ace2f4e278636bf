"""A real (tiny) PPO training streams into the page; the page's mode switch
reaches the trainer without recompiling. One training only: compiling costs
~45 s on 2 CPU cores.
"""

from __future__ import annotations

import threading
import time

from brax import envs
import numpy as np
import pytest
from tiny_training import TINY, count_compiles

from braxviewer import WebViewerBatched
from braxviewer.brax.training.agents.ppo import train as ppo
from braxviewer.core.protocol import Mode

pytestmark = pytest.mark.slow


def test_training_streams_into_the_page_and_page_switches_the_trainer(
  page, open_page, scene_pixels, wait_until
):
  env = envs.get_environment("inverted_pendulum", backend="generalized")
  viewer = WebViewerBatched(num_envs=8, port=0, mode="sync")
  viewer.run()
  viewer.init(env)
  trainer_modes = []
  on_trainer_mode = viewer.on_trainer_mode

  def record(mode):
    trainer_modes.append(Mode.parse(mode))
    on_trainer_mode(mode)

  viewer.on_trainer_mode = record
  # Chunks received when the page's switch reached the viewer: the clicks
  # before it take a variable time on a loaded machine.
  received_at_switch = []
  set_mode = viewer.set_mode

  def spy_set_mode(mode):
    received_at_switch.append(viewer.stats()["chunks_received"])
    set_mode(mode)

  viewer.set_mode = spy_set_mode
  heartbeats = []  # (env steps, compiles so far) per trainer device call
  on_progress = viewer.on_progress
  result = {}

  with count_compiles() as counter:

    def progress(step, metrics):
      if set(metrics) == {"training/sps"}:  # the trainer's per-call beat
        heartbeats.append((step, counter.count))
      on_progress(step, metrics)

    viewer.on_progress = progress

    def train():
      try:
        # Sync mode paces training at real time while the page watches: 300
        # training steps of 20 frames would take minutes, until the page
        # turns streaming off.
        result["out"] = ppo.train(
          environment=env,
          viewer=viewer,
          **{**TINY, "num_timesteps": 160 * 300, "num_evals": 2},
        )
      except BaseException as err:
        result["error"] = err

    trainer = threading.Thread(target=train, daemon=True)
    trainer.start()
    try:
      open_page(page, viewer.url)
      # Compiling, then the first chunks; sync: every frame is shown.
      assert wait_until(
        lambda: viewer.stats()["frames_shown"] > 30, timeout=240
      )
      assert Mode.SYNC in trainer_modes
      before = scene_pixels(page)
      time.sleep(1.0)
      assert np.abs(scene_pixels(page).astype(int) - before).max() > 40
      compiled = counter.count

      page.get_by_role("tab", name="Live").click()
      page.get_by_role("combobox", name="Streaming").click()
      page.get_by_role("option", name="off", exact=True).click()
      assert wait_until(lambda: trainer_modes[-1] == Mode.OFF, timeout=30)
      assert page.get_by_text("off", exact=True).count() > 0
      trainer.join(timeout=240)
      assert not trainer.is_alive()
    finally:
      viewer.close()
      trainer.join(timeout=60)

  assert "error" not in result, result.get("error")
  assert trainer_modes == [Mode.SYNC, Mode.OFF]
  # The page's switch took effect within a training step or two.
  assert len(received_at_switch) == 1
  assert viewer.stats()["chunks_received"] <= received_at_switch[0] + 2
  # No recompiling for the switch: the training steps after it, up to the
  # end of the (single) epoch, ran on what was compiled before it.
  last_step, compiles_then = max(heartbeats)
  assert last_step == 160 * 300 and compiles_then == compiled
  _, params, metrics = result["out"]
  assert params is not None and "eval/episode_reward" in metrics
  assert page.blocked == []
