"""The MuJoCo Playground zoo: every env that loads offline (the 25 DM
Control Suite envs) starts a viewer at 1, 4 and 16 envs, and every env that
moves a goal (a mocap body) has it drawn where the env put it.

What each env draws is checked against MuJoCo in test_web_drawing.py, and
its N-copy model in test_model_match.py.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest

from braxviewer import WebViewerBatched
from braxviewer.scene.batched import BatchedScene
from braxviewer.train import tap

registry = pytest.importorskip("mujoco_playground").registry
DMC = sorted(registry.dm_control_suite.ALL_ENVS)
# The suite envs with a mocap body (a goal or target the env places).
WITH_GOALS = [n for n in DMC if registry.load(n).mj_model.nmocap]


def test_the_zoo_is_what_these_tests_cover():
  assert len(DMC) == 25
  assert set(WITH_GOALS) >= {
    "FingerTurnEasy",
    "FingerTurnHard",
    "FishSwim",
    "ReacherEasy",
    "ReacherHard",
    "SwimmerSwimmer6",
  }


@pytest.mark.slow
@pytest.mark.parametrize("name", DMC)
def test_the_viewer_starts_on_every_offline_playground_env(name):
  env = registry.load(name)
  for n in (1, 4, 16):
    viewer = WebViewerBatched(num_envs=n, port=0)
    try:
      viewer.run()
      viewer.init(env)
      page = viewer.page
      assert page is not None and page.view is not None
      assert page.view.num_envs == n
      assert page.view.model is env.mj_model  # what the env simulates
      assert page.triangles > 0
    finally:
      viewer.close()


# FingerSpin has the target body but never moves it (spinning needs none).
@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in WITH_GOALS if n != "FingerSpin"])
def test_goals_are_drawn_where_each_playground_env_put_them(name):
  n = 4
  env = registry.load(name, config_overrides={"impl": "jax"})
  model = env.mj_model
  scene = BatchedScene(env, n)
  mocap_bodies = np.flatnonzero(model.body_mocapid >= 0)
  reset = jax.jit(jax.vmap(env.reset))
  step = jax.jit(jax.vmap(env.step))
  state = reset(jax.random.split(jax.random.PRNGKey(0), n))
  key = jax.random.PRNGKey(1)
  moved = False
  for _ in range(3):  # after reset, then after steps
    frame = tap.select_frame(state, n, "qpos")
    assert frame["mocap_pos"].shape == (n, model.nmocap, 3)
    poses = scene.poses_from_qpos(
      np.asarray(frame["qpos"])[None],
      np.asarray(frame["mocap_pos"])[None],
      np.asarray(frame["mocap_quat"])[None],
    )
    drawn = poses.xpos[0] - scene.offsets[:, None, :]
    # the goals where the env put them (its mocap state: after a reset the
    # env has not run kinematics yet, its xpos of a goal is stale) ...
    goals = np.asarray(state.data.mocap_pos)[
      :, model.body_mocapid[mocap_bodies]
    ]
    np.testing.assert_allclose(drawn[:, mocap_bodies], goals, atol=1e-5)
    # ... and every body where MuJoCo puts it for the env's own state (its
    # data.xpos lags qpos by the last substep: mj_step integrates after)
    data = mujoco.MjData(model)
    for e in range(n):
      data.qpos[:] = np.asarray(state.data.qpos[e])
      data.mocap_pos[:] = np.asarray(state.data.mocap_pos[e])
      data.mocap_quat[:] = np.asarray(state.data.mocap_quat[e])
      mujoco.mj_kinematics(model, data)
      np.testing.assert_allclose(drawn[e], data.xpos, atol=1e-5)
    moved |= bool(np.abs(goals - model.body_pos[mocap_bodies]).max() > 1e-3)
    key, sub = jax.random.split(key)
    action = jax.random.uniform(sub, (n, env.action_size), minval=-1.0)
    state = step(state, action.astype(jnp.float32))
  assert moved, f"{name} never moved its goal: the test would not see it"
