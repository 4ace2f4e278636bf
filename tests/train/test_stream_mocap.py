"""Mocap bodies are streamed and posed where each env put them."""

from __future__ import annotations

import dataclasses
import time

from goal_env import GoalEnv
import jax
import jax.numpy as jnp
import mujoco
from mujoco import mjx
import numpy as np
import pytest

from braxviewer.core.frames import FrameChunk, fit_envs
from braxviewer.scene.batched import BatchedScene
from braxviewer.scene.kinematics import BatchKinematics
from braxviewer.train import tap

pytestmark = pytest.mark.slow  # compiles the tap on Playground envs

N = 4  # streamed envs (of 6)


def _chunk(frames) -> FrameChunk:
  """A FrameChunk of stacked ``select_frame`` outputs."""
  f = {
    k: np.asarray(v) for k, v in frames.items() if k not in ("metrics", "info")
  }
  return FrameChunk(
    seq=0,
    source="train",
    env_steps=0,
    dt=0.02,
    reward=f["reward"],
    done=f["done"],
    truncation=f["truncation"],
    metrics={k: np.asarray(v) for k, v in frames["metrics"].items()},
    wall_time=time.time(),
    qpos=f.get("qpos"),
    mocap_pos=f.get("mocap_pos"),
    mocap_quat=f.get("mocap_quat"),
    info={k: np.asarray(v) for k, v in frames["info"].items()},
  )


@pytest.fixture(scope="module")
def goal_run():
  """Three steps of 6 GoalEnv envs: the streamed frames of the first N and
  the body positions MJX computes for every state."""
  env = GoalEnv()
  state = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.key(1), 6))
  step = jax.jit(jax.vmap(env.step))
  kinematics = jax.jit(jax.vmap(lambda d: mjx.kinematics(env.sys, d)))
  frames, xpos, xquat = [], [], []
  for t in range(3):
    if t:
      state = step(state, jnp.full((6, 1), 0.5))
    frames.append(tap.select_frame(state, N, "qpos"))
    truth = kinematics(state.pipeline_state)
    xpos.append(np.asarray(truth.xpos[:N]))
    xquat.append(np.asarray(truth.xquat[:N]))
  stacked = jax.tree.map(lambda *x: np.stack(x), *frames)
  return env, state, stacked, np.stack(xpos), np.stack(xquat)


def test_select_frame_and_describe_stream_the_mocap_state(goal_run):
  env, state, frames, _, _ = goal_run
  assert frames["mocap_pos"].shape == (3, N, 2, 3)
  assert frames["mocap_quat"].shape == (3, N, 2, 4)
  assert frames["mocap_pos"].dtype == np.float32
  np.testing.assert_array_equal(
    frames["mocap_pos"][-1], np.asarray(state.pipeline_state.mocap_pos[:N])
  )
  # the env moved each env's goal somewhere of its own
  assert np.ptp(frames["mocap_pos"][0, :, 0, :2], axis=0).min() > 1e-3
  spec = tap.describe(state, "qpos")
  assert spec.nmocap == 2 and spec.nq == env.sys.q_size()


def test_poses_put_mocap_bodies_where_the_env_put_them(goal_run):
  env, _, frames, xpos, xquat = goal_run
  scene = BatchedScene(env.mj_model, N, env_offset=(1.0, 1.0, 0.0))
  chunk = _chunk(frames)
  poses = scene.poses(chunk)
  assert poses.valid.all()
  local = poses.xpos - scene.offsets[:, None, :]
  # the arm and both mocap bodies. Not the marker's child: MJX (jax impl)
  # places mocap bodies after walking the tree, so their children stay at
  # the default pose there; MuJoCo moves them along (checked below against
  # MuJoCo itself).
  bodies = [env.mj_model.body(b).id for b in ("arm", "goal", "marker")]
  assert np.abs(local[..., bodies, :] - xpos[..., bodies, :]).max() <= 1e-5
  dots = np.abs(np.sum(poses.xquat[..., bodies, :] * xquat[..., bodies, :], -1))
  assert np.abs(dots - 1).max() <= 1e-5
  flag = env.mj_model.body("flag").id
  data = mujoco.MjData(env.mj_model)
  data.qpos[:] = chunk.qpos[2, 1]
  data.mocap_pos[:] = chunk.mocap_pos[2, 1]
  data.mocap_quat[:] = chunk.mocap_quat[2, 1]
  mujoco.mj_kinematics(env.mj_model, data)
  np.testing.assert_allclose(local[2, 1, flag], data.xpos[flag], atol=1e-12)
  # mocap_arrays: the mocap bodies' world poses, in mocap id order
  mocap_pos, mocap_quat = scene.mocap_arrays(poses)
  np.testing.assert_allclose(
    mocap_pos - scene.offsets[:, None, :], chunk.mocap_pos, atol=1e-6
  )
  assert mocap_quat.shape == (3, N, 2, 4)
  # without the streamed mocap state: the model's default pose (not the env's)
  default = scene.poses_from_qpos(chunk.qpos)
  goal = env.mj_model.body("goal").id
  np.testing.assert_allclose(
    default.xpos[:, :, goal] - scene.offsets,
    np.broadcast_to(env.mj_model.body_pos[goal], (3, N, 3)),
  )
  assert np.abs(default.xpos[:, :, goal] - poses.xpos[:, :, goal]).max() > 0.01


def test_nan_mocap_marks_only_its_env_invalid(goal_run):
  env, _, frames, _, _ = goal_run
  scene = BatchedScene(env.mj_model, N)
  chunk = _chunk(frames)
  pos = chunk.mocap_pos.copy()
  quat = chunk.mocap_quat.copy()
  pos[1, 2, 0, 0] = np.nan
  quat[2, 0, 1, 3] = np.inf
  clean = scene.poses_from_qpos(chunk.qpos, chunk.mocap_pos, chunk.mocap_quat)
  poses = scene.poses_from_qpos(chunk.qpos, pos, quat)
  expected = np.ones((3, N), bool)
  expected[1, 2] = expected[2, 0] = False
  np.testing.assert_array_equal(poses.valid, expected)
  assert np.isfinite(poses.xpos).all() and np.isfinite(poses.xquat).all()
  np.testing.assert_array_equal(poses.xpos[expected], clean.xpos[expected])
  rest = scene.rest_poses()
  np.testing.assert_array_equal(poses.xpos[1, 2], rest.xpos[2])


def test_mocap_shapes_are_checked(goal_run):
  env, _, frames, _, _ = goal_run
  scene = BatchedScene(env.mj_model, N)
  chunk = _chunk(frames)
  with pytest.raises(ValueError, match="mocap_pos has shape"):
    scene.poses_from_qpos(chunk.qpos, chunk.mocap_pos[:, :, :1])
  with pytest.raises(ValueError, match="mocap_quat has shape"):
    scene.poses_from_qpos(chunk.qpos, None, chunk.mocap_quat[:2])
  with pytest.raises(ValueError, match="together"):
    dataclasses.replace(chunk, mocap_quat=None)
  with pytest.raises(ValueError, match="mocap shapes"):
    dataclasses.replace(chunk, mocap_quat=chunk.mocap_quat[..., :3])
  with pytest.raises(ValueError, match="mocap shapes"):
    dataclasses.replace(chunk, mocap_pos=chunk.mocap_pos[:, :2])


def test_fit_envs_pads_mocap_with_nan_so_extra_envs_are_invalid(goal_run):
  env, _, frames, _, _ = goal_run
  wide = fit_envs(_chunk(frames), N + 2)
  assert wide.mocap_pos.shape == (3, N + 2, 2, 3)
  assert np.isnan(wide.mocap_pos[:, N:]).all()
  assert wide.info["command"].shape == (3, N + 2, 3)
  assert (wide.info["command"][:, N:] == 0).all()
  narrow = fit_envs(_chunk(frames), 2)
  assert narrow.mocap_quat.shape == (3, 2, 2, 4) and narrow.nmocap == 2
  scene = BatchedScene(env.mj_model, N + 2)
  assert scene.poses(wide).valid.tolist() == [[True] * N + [False] * 2] * 3


def test_the_kinematic_twin_moves_mocap_bodies_bit_for_bit_like_mujoco():
  model = GoalEnv().mj_model
  twin = BatchKinematics(model, 5)
  single = BatchKinematics(model, 5, use_twin=False)
  assert twin.uses_twin
  rng = np.random.default_rng(3)
  qpos = rng.normal(size=(2, 5, model.nq))
  pos = rng.normal(size=(2, 5, model.nmocap, 3))
  quat = rng.normal(size=(2, 5, model.nmocap, 4))
  for a, b in zip(twin(qpos, pos, quat), single(qpos, pos, quat)):
    np.testing.assert_array_equal(a, b)
  # and MuJoCo itself agrees (quaternions normalized as MuJoCo does)
  data = mujoco.MjData(model)
  data.qpos[:] = qpos[1, 3]
  data.mocap_pos[:] = pos[1, 3]
  data.mocap_quat[:] = quat[1, 3]
  mujoco.mj_kinematics(model, data)
  xpos, xquat = twin(qpos, pos, quat)
  np.testing.assert_array_equal(xpos[1, 3], data.xpos)
  np.testing.assert_array_equal(xquat[1, 3], data.xquat)
  # None after given mocap: back to the model's own mocap pose
  again = twin(qpos)
  data = mujoco.MjData(model)
  data.qpos[:] = qpos[0, 0]
  mujoco.mj_kinematics(model, data)
  np.testing.assert_array_equal(again[0][0, 0], data.xpos)


def test_a_state_without_mocap_streams_none():
  # brax generalized / positional states have no mocap_pos; nor do models
  # whose nmocap is 0 (mjx Data then holds (B, 0, 3))
  from types import SimpleNamespace

  state = SimpleNamespace(
    pipeline_state=SimpleNamespace(
      q=jnp.zeros((3, 2)),
      mocap_pos=jnp.zeros((3, 0, 3)),
      mocap_quat=jnp.zeros((3, 0, 4)),
    ),
    reward=jnp.zeros(3),
    done=jnp.zeros(3),
    info={},
    metrics={},
  )
  frame = tap.select_frame(state, 2, "qpos")
  assert "mocap_pos" not in frame and "mocap_quat" not in frame
  del state.pipeline_state.mocap_pos
  assert "mocap_pos" not in tap.select_frame(state, 2, "qpos")


def test_a_playground_dmc_env_streams_its_goal_where_the_env_put_it():
  registry = pytest.importorskip("mujoco_playground").registry
  # impl "jax": the default (warp, on a CPU) leaves a thread that keeps the
  # interpreter from exiting once it has run
  env = registry.load("ReacherEasy", config_overrides={"impl": "jax"})
  assert env.mj_model.nmocap == 1
  state = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.key(0), 3))
  frame = tap.select_frame(state, 3, "qpos")
  assert tap.describe(state, "qpos").nmocap == 1
  chunk = _chunk(jax.tree.map(lambda x: np.asarray(x)[None], frame))
  scene = BatchedScene(env.mj_model, 3)
  poses = scene.poses(chunk)
  # Reacher sets its target after its forward pass: data.xpos still holds
  # the default target; MJX's kinematics of the returned data is the truth.
  truth = jax.vmap(lambda d: mjx.kinematics(env.mjx_model, d))(state.data)
  target = env.mj_model.body("target").id
  got = poses.xpos[0, :, target] - scene.offsets
  want = np.asarray(truth.xpos[:, target])
  assert np.abs(got - want).max() <= 1e-5
  assert np.abs(got - env.mj_model.body_pos[target]).max() > 1e-3  # moved
