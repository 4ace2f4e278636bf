"""SAC: the page can switch streaming at any moment, without recompiling."""

import pytest
from tiny_sac import TINY_SAC, pendulum
from tiny_training import ScheduledViewer, count_compiles

from braxviewer.brax.training.agents.sac import train as ours
from braxviewer.train import epoch_calls
from braxviewer.train import sac as sac_impl

pytestmark = pytest.mark.slow


def test_sac_off_live_sync_off_switches_take_effect_without_recompiling(
  monkeypatch,
):
  # One training step per device call and 5 frames per chunk, so the
  # switch points are exact.
  monkeypatch.setattr(epoch_calls, "CALL_SECONDS", 0.0)
  monkeypatch.setattr(sac_impl, "CHUNK_STEPS", 5)
  viewer = ScheduledViewer(num_envs=2, mode="off")
  compiles_at = {}
  with count_compiles() as counter:

    def progress(step, metrics):
      del metrics
      compiles_at[step] = counter.count
      if step == 272:
        viewer.set_mode("live")

    ours.train(
      environment=pendulum(), viewer=viewer, progress_fn=progress, **TINY_SAC
    )

  assert viewer.trainer_modes == ["off", "live", "sync", "off"]
  train = [c for c in viewer.chunks if c.source == "train"]
  # Steps 31-35 filled a chunk sent live (env steps 32 + 8 x 35), 36-40 one
  # sent in sync; then off: nothing more, and no eval chunk.
  assert [(c.seq, c.env_steps) for c in train] == [(0, 312), (1, 352)]
  assert all(c.num_steps == 5 and c.num_envs == 2 for c in train)
  assert not [c for c in viewer.chunks if c.source == "eval"]
  # The first epoch and eval compiled everything; the epoch with the
  # switches and the eval after it compiled nothing.
  assert compiles_at[272] > 0
  assert compiles_at[512] == compiles_at[272], compiles_at
