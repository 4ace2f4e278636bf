"""Streaming works on every brax backend and on MuJoCo Playground envs."""

from brax import envs
import numpy as np
import pytest
from tiny_training import TINY

from braxviewer import HeadlessViewer
from braxviewer.brax.training.agents.ppo import train as ours

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("backend", ["positional", "spring"])
def test_positional_and_spring_stream_link_poses(backend):
  env = envs.get_environment("inverted_pendulum", backend=backend)
  viewer = HeadlessViewer(num_envs=3, mode="live")
  ours.train(environment=env, viewer=viewer, **TINY)
  info = viewer.stream_info
  assert info.kind == "links" and info.nq is None and info.backend == backend
  num_links = env.sys.num_links()
  assert info.num_links == num_links
  train = [c for c in viewer.chunks if c.source == "train"]
  assert len(train) == 4 and all(c.kind == "links" for c in train)
  for c in train:
    assert c.qpos is None
    assert c.link_pos.shape == (20, 3, num_links, 3)
    assert c.link_rot.shape == (20, 3, num_links, 4)
    np.testing.assert_allclose(
      np.linalg.norm(c.link_rot, axis=-1), 1, atol=1e-4
    )
  # The pole moves: poses are the simulation, not a constant.
  assert np.ptp(np.stack([c.link_pos for c in train]), axis=(0, 1)).max() > 1e-3


def test_playground_env_streams_qpos_through_its_own_wrapper():
  from mujoco_playground import registry, wrapper

  env = registry.load("CartpoleBalance")
  viewer = HeadlessViewer(num_envs=4, mode="live")
  records = []
  ours.train(
    environment=env,
    viewer=viewer,
    wrap_env_fn=wrapper.wrap_for_brax_training,
    progress_fn=lambda s, m: records.append(s),
    **TINY,
  )
  info = viewer.stream_info
  assert info.kind == "qpos" and info.nq == env.mj_model.nq
  assert info.dt == pytest.approx(env.dt)
  train = [c for c in viewer.chunks if c.source == "train"]
  assert len(train) == 4
  assert all(c.qpos.shape == (20, 4, env.mj_model.nq) for c in train)
  # Reward terms from state.metrics arrive per step and per env.
  assert set(train[0].metrics) == set(info.reward_terms)
  for c in train:
    for name, values in c.metrics.items():
      assert values.shape == (20, 4), name
  assert records == [0, 320, 640]
  # Eval progress reached the viewer as well as the user's progress_fn,
  # and a steps/s heartbeat after every device call, with growing steps.
  evals = [s for s, m in viewer.progress if "eval/episode_reward" in m]
  assert evals == [0, 320, 640]
  beats = [s for s, m in viewer.progress if set(m) == {"training/sps"}]
  assert beats == sorted(beats) and beats[-1] == 640 and len(beats) >= 2
