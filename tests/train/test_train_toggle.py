"""The page can switch streaming at any moment, without recompiling."""

from brax import envs
import pytest
from tiny_training import TINY, ScheduledViewer, count_compiles

from braxviewer.brax.training.agents.ppo import train as ours
from braxviewer.train import epoch_calls

pytestmark = pytest.mark.slow


def test_off_live_sync_off_switches_take_effect_next_training_step_without_recompiling(
  monkeypatch,
):
  # One training step per device call, so the switch point is exact.
  monkeypatch.setattr(epoch_calls, "CALL_SECONDS", 0.0)
  env = envs.get_environment("inverted_pendulum", backend="generalized")
  viewer = ScheduledViewer(num_envs=2, mode="off")
  compiles_at = {}
  with count_compiles() as counter:

    def progress(step, metrics):
      compiles_at[step] = counter.count
      if step == 320:
        viewer.set_mode("live")

    ours.train(
      environment=env,
      viewer=viewer,
      progress_fn=progress,
      **{**TINY, "num_timesteps": 960, "num_evals": 4},
    )

  assert viewer.trainer_modes == ["off", "live", "sync", "off"]
  train = [c for c in viewer.chunks if c.source == "train"]
  # Training step 3 ran live, step 4 in sync (one chunk each); then off.
  assert [c.env_steps for c in train] == [480, 640]
  assert all(c.num_steps == 20 for c in train)
  assert all(c.num_envs == 2 for c in train)
  # Nothing streamed from the evals, which all ran while off.
  assert not [c for c in viewer.chunks if c.source == "eval"]
  # The first epoch and eval compiled everything; the two epochs with the
  # switches and the evals after them compiled nothing.
  assert compiles_at[320] > 0
  assert compiles_at[960] == compiles_at[320]


def test_training_program_compiles_once_even_when_the_env_state_comes_back_weakly_typed():
  # One device call per epoch (no viewer): the second epoch re-feeds the
  # first one's outputs. Envs return some state fields weakly typed; that
  # must not compile the training program a second time (upstream does).
  env = envs.get_environment("inverted_pendulum", backend="generalized")
  compiles_at = {}
  with count_compiles() as counter:
    ours.train(
      environment=env,
      progress_fn=lambda step, _: compiles_at.setdefault(step, counter.count),
      **{**TINY, "num_timesteps": 960, "num_evals": 4},
    )
  assert sorted(compiles_at) == [0, 320, 640, 960]
  assert compiles_at[320] > compiles_at[0]  # the training program
  assert compiles_at[960] == compiles_at[320], compiles_at
