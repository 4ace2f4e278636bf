"""SAC with a viewer: learns what upstream learns, streams the first envs.

One module-scoped set of trainings (upstream, ours without a viewer, ours
with a viewer that is off for the first epoch and live after it) serves
every test here: compiling SAC takes most of a minute on 2 CPU cores.
"""

from brax.training.agents.sac import train as upstream
import numpy as np
import pytest
from stream_check import body_position_error
from tiny_sac import TINY_SAC, pendulum
from tiny_training import eval_rewards, flat_params, train_and_record

from braxviewer import HeadlessViewer
from braxviewer.brax.training.agents.sac import train as ours
from braxviewer.train import sac as sac_impl

pytestmark = pytest.mark.slow

CHUNK = 12  # frames per chunk in the viewer run: 5 chunks in 60 steps


def _run(train_fn, env, **kw):
  return train_and_record(train_fn, env, TINY_SAC, **kw)


@pytest.fixture(scope="module")
def runs():
  env = pendulum()
  viewer = HeadlessViewer(num_envs=3, mode="off")

  def go_live(step, metrics):
    del metrics
    if step == 272:  # after the first epoch and its eval
      viewer.set_mode("live")

  with pytest.MonkeyPatch.context() as mp:
    mp.setattr(sac_impl, "CHUNK_STEPS", CHUNK)
    out = {
      "upstream": _run(upstream.train, env),
      "none": _run(ours.train, env),
    }
    records = []

    def progress(step, metrics):
      records.append((step, metrics))
      go_live(step, metrics)

    _, params, _ = ours.train(
      environment=env, viewer=viewer, progress_fn=progress, **TINY_SAC
    )
  out["viewer"] = (
    flat_params(params),
    eval_rewards(records),
    [s for s, _ in records],
  )
  return env, out, viewer


def test_sac_without_and_with_a_viewer_learns_upstreams_params(runs):
  _, out, viewer = runs
  ref_params, ref_rewards, ref_steps = out["upstream"]
  assert ref_steps == [0, 272, 512]
  scale = np.max(np.abs(ref_params))
  for name in ("none", "viewer"):
    params, rewards, steps = out[name]
    assert steps == ref_steps, name
    assert np.max(np.abs(params - ref_params)) <= 1e-5 * scale, name
    np.testing.assert_allclose(rewards, ref_rewards, rtol=1e-5, err_msg=name)
  assert viewer.trainer_modes == ["off", "live"]


def test_sac_streams_ordered_chunks_of_consecutive_steps_only_while_live(runs):
  _, _, viewer = runs
  info = viewer.stream_info
  assert info is not None and info.chunk_length == CHUNK
  assert info.num_envs == 3 and info.num_train_envs == 8 and info.dt > 0
  train = [c for c in viewer.chunks if c.source == "train"]
  # Off during epoch 1: nothing sent. Live in epoch 2: the chunks that
  # filled then (training steps 36, 48, 60 after a 32-step prefill of 8
  # envs); the first holds steps 25-36, across the epoch's end.
  assert [c.seq for c in train] == [0, 1, 2]
  assert [c.env_steps for c in train] == [320, 416, 512]
  for c in train:
    assert c.qpos is not None and c.qpos.shape == (CHUNK, 3, info.nq)
    assert c.reward.shape == (CHUNK, 3) and np.isfinite(c.qpos).all()
  assert np.ptp(train[-1].qpos, axis=1).max() > 0  # distinct envs
  assert viewer.ended


def test_sac_eval_rollouts_are_streamed_as_eval_chunks(runs):
  _, _, viewer = runs
  evals = [c for c in viewer.chunks if c.source == "eval"]
  # Only the last eval ran live: one rollout of episode_length frames.
  assert [(c.seq, c.env_steps) for c in evals] == [(0, 512)]
  assert evals[0].qpos is not None
  assert evals[0].qpos.shape == (20, 3, viewer.stream_info.nq)


def test_sac_streamed_poses_reproduce_the_env_body_positions(runs):
  env, _, viewer = runs
  train = [c for c in viewer.chunks if c.source == "train"]
  assert max(body_position_error(env, c) for c in train) <= 1e-5
