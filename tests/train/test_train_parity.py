"""The viewer never changes what is learned: same seed, same params."""

from brax import envs
from brax.training.agents.ppo import train as upstream
import numpy as np
import pytest
from tiny_training import TINY, train_and_record

from braxviewer import HeadlessViewer
from braxviewer.brax.training.agents.ppo import train as ours

pytestmark = pytest.mark.slow


def _run(train_fn, env, **kw):
  return train_and_record(train_fn, env, TINY, **kw)


def test_upstream_none_off_and_live_learn_identical_params():
  env = envs.get_environment("inverted_pendulum", backend="generalized")
  ref_params, ref_rewards, ref_steps = _run(upstream.train, env)
  off = HeadlessViewer(num_envs=4, mode="off")
  live = HeadlessViewer(num_envs=4, mode="live")
  runs = {
    "none": _run(ours.train, env),
    "off": _run(ours.train, env, viewer=off),
    "live": _run(ours.train, env, viewer=live),
  }
  scale = np.max(np.abs(ref_params))
  for name, (params, rewards, steps) in runs.items():
    assert steps == ref_steps, name
    assert np.max(np.abs(params - ref_params)) <= 1e-5 * scale, name
    np.testing.assert_allclose(rewards, ref_rewards, rtol=1e-5, err_msg=name)
  # The viewers really were in the modes compared: off sent nothing.
  assert len(off.chunks) == 0 and off.trainer_modes == ["off"]
  assert len(live.chunks) > 0 and live.trainer_modes == ["live"]
  # Training moved the params: the runs are not compared at their start.
  initial, _, _ = _run(ours.train, env, **{"num_timesteps": 0})
  assert np.max(np.abs(initial - ref_params)) > 1e-3
