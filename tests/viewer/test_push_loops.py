"""``viewer.push`` from Python loops over jitted envs (MuJoCo Playground and
brax), and the push side's info choice against the tap's."""

from __future__ import annotations

from typing import Any, Dict, List

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from braxviewer import HeadlessViewer
from braxviewer.core.info_keys import choose_info_keys
from braxviewer.scene.batched import BatchedScene
from braxviewer.train import tap

NUM_ENVS, SHOWN, STEPS = 8, 4, 120


@pytest.fixture(scope="module")
def cartpole_run() -> Dict[str, Any]:
  """120 steps of 8 CartpoleBalance envs pushed to a viewer of 4, with what
  the states held (first 4 envs)."""
  from mujoco_playground import registry

  env = registry.load("CartpoleBalance", config_overrides={"impl": "jax"})
  reset, step = jax.jit(jax.vmap(env.reset)), jax.jit(jax.vmap(env.step))
  state = reset(jax.random.split(jax.random.PRNGKey(0), NUM_ENVS))
  viewer = HeadlessViewer(num_envs=SHOWN)
  rng = np.random.default_rng(0)
  seen: Dict[str, List[np.ndarray]] = {"reward": [], "done": [], "xpos": []}
  for _ in range(STEPS):
    action = rng.uniform(-1, 1, (NUM_ENVS, env.action_size))
    state = step(state, jnp.asarray(action, jnp.float32))
    viewer.push(state, env=env)
    seen["reward"].append(np.asarray(state.reward)[:SHOWN])
    seen["done"].append(np.asarray(state.done)[:SHOWN])
    seen["xpos"].append(np.asarray(state.data.xpos)[:SHOWN])
  viewer.close()
  return dict(env=env, viewer=viewer, state=state, **seen)


@pytest.mark.slow  # compiles a Playground env's step (~30 s on 2 cores)
def test_a_playground_loop_streams_chunks_in_order(cartpole_run):
  viewer, env = cartpole_run["viewer"], cartpole_run["env"]
  chunks = list(viewer.chunks)
  assert [c.seq for c in chunks] == [0, 1, 2] and viewer.ended
  assert [c.qpos.shape for c in chunks] == [  # type: ignore[union-attr]
    (50, SHOWN, env.mj_model.nq),
    (50, SHOWN, env.mj_model.nq),
    (20, SHOWN, env.mj_model.nq),  # the rest, sent at close
  ]
  assert [c.env_steps for c in chunks] == [400, 800, 960]
  info = viewer.stream_info
  assert info.dt == env.dt and info.num_train_envs == NUM_ENVS
  state = cartpole_run["state"]
  assert info.reward_terms == tuple(state.metrics)
  assert info.info_keys == tap.choose_info_keys(state)  # the tap's choice
  reward = np.concatenate([c.reward for c in chunks])
  np.testing.assert_array_equal(reward, cartpole_run["reward"])
  done = np.concatenate([c.done for c in chunks])
  np.testing.assert_array_equal(done, cartpole_run["done"])


@pytest.mark.slow
def test_pushed_poses_reproduce_the_body_positions(cartpole_run):
  env, viewer = cartpole_run["env"], cartpole_run["viewer"]
  scene = BatchedScene(env.mj_model, SHOWN)
  xpos = np.concatenate([scene.poses(c).xpos for c in viewer.chunks])
  # An MJX step computes body positions before it integrates: the xpos of
  # step t + 1 belongs to the qpos of step t (no resets in this run).
  assert not np.any(cartpole_run["done"])
  want = np.asarray(cartpole_run["xpos"]) + scene.offsets[None, :, None, :]
  np.testing.assert_allclose(xpos[:-1], want[1:], atol=1e-5)


@pytest.mark.slow  # compiles a brax step and a positional reset (~35 s)
def test_a_brax_loop_streams_qpos_and_links():
  from brax import envs

  env = envs.get_environment("inverted_pendulum")
  reset, step = jax.jit(jax.vmap(env.reset)), jax.jit(jax.vmap(env.step))
  state = reset(jax.random.split(jax.random.PRNGKey(1), NUM_ENVS))
  viewer = HeadlessViewer(num_envs=SHOWN)
  qpos = []
  for _ in range(30):
    state = step(state, jnp.zeros((NUM_ENVS, env.action_size)))
    viewer.push(state, env=env, chunk_length=25)
    qpos.append(np.asarray(state.pipeline_state.q)[:SHOWN])
  viewer.flush()
  assert [c.num_steps for c in viewer.chunks] == [25, 5]
  assert viewer.stream_info.backend == "generalized"
  got = np.concatenate([c.qpos for c in viewer.chunks])
  np.testing.assert_allclose(got, qpos, atol=1e-6)

  links_env = envs.get_environment("inverted_pendulum", backend="positional")
  links = jax.jit(jax.vmap(links_env.reset))(
    jax.random.split(jax.random.PRNGKey(2), NUM_ENVS)
  )
  other = HeadlessViewer(num_envs=SHOWN)
  other.push(links, dt=links_env.dt)  # the kind from the state's type
  other.flush()
  (chunk,) = other.chunks
  assert chunk.kind == "links" and chunk.link_pos is not None
  np.testing.assert_allclose(
    chunk.link_pos[0], np.asarray(links.pipeline_state.x.pos)[:SHOWN]
  )


def test_info_is_chosen_alike_from_device_and_numpy_arrays():
  b = 3
  state = _Info(
    reward=jnp.zeros(b),
    info={
      "rng": jax.random.split(jax.random.PRNGKey(0), b),
      "key": jax.random.split(jax.random.key(0), b),  # a typed key
      "command": jnp.zeros((b, 3)),
      "steps": jnp.zeros(b),
      "first_obs": jnp.zeros((b, 2)),
      "episode_done": jnp.zeros(b),
      "wide": jnp.zeros((b, 5)),
      "flag": jnp.zeros(b, bool),
      "count": jnp.zeros(b, jnp.int32),
      "scalar": jnp.zeros(()),
      "goal": {"xy": jnp.zeros((b, 2)), "seed_rng": jnp.zeros((b,))},
      **{f"f{i}": jnp.zeros((b, 4)) for i in range(4)},
    },
  )
  np_info = jax.tree.map(
    lambda x: (
      x if jnp.issubdtype(x.dtype, jax.dtypes.prng_key) else np.asarray(x)
    ),
    state.info,
  )
  # command first; no keys, bookkeeping, scalars or wide entries; 16 numbers
  auto = ("command", "count", "f0", "f1", "f2")
  assert tap.choose_info_keys(state) == auto
  for keys in (None, ("goal",), ("rng", "wide", "flag"), ()):
    want = tap.choose_info_keys(state, keys)
    assert choose_info_keys(state.info, b, keys) == want, keys
    assert choose_info_keys(np_info, b, keys) == want, keys
  for bad in (("scalar",), ("nope",)):
    with pytest.raises(ValueError, match="Entries that can be streamed"):
      tap.choose_info_keys(state, bad)
    with pytest.raises(ValueError, match="Entries that can be streamed"):
      choose_info_keys(state.info, b, bad)


class _Info:
  def __init__(self, reward: Any, info: Any):
    self.reward, self.info = reward, info
