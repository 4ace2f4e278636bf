"""braxviewer.wrap: a wrapper over the batched env streams any jitted loop.

Fast tests on a toy env (compiles in a second); the brax and MuJoCo
Playground envs are in test_wrapper_envs.py. ``purejaxrl_loop`` is the
custom training loop both use.
"""

from __future__ import annotations

from typing import Any, Callable, Tuple
import warnings

from brax.envs.base import State
from flax import struct
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tiny_training import count_compiles

import braxviewer
from braxviewer import HeadlessViewer
from braxviewer.core.streamer import ViewerFailure
from braxviewer.train.wrapper import KEY, ViewerWrapper, wrap

# -- a custom training loop (purejaxrl style) ---------------------------------


def purejaxrl_loop(
  env: Any, num_envs: int, rollout: int, obs_of: Callable[[Any], jax.Array]
):
  """A linear Gaussian policy trained by REINFORCE on ``rollout``-step
  batches: ``init(key) -> carry`` and ``update(carry) -> (carry, out)``,
  both jitted; ``out`` holds the returns and the first envs' poses. The
  carry comes back strongly typed, so re-feeding it compiles nothing."""
  keys = jax.random.split(jax.random.PRNGKey(0), num_envs)
  obs_size = int(obs_of(jax.eval_shape(env.reset, keys)).shape[-1])
  act = int(env.action_size)

  def init(key: jax.Array):
    key, k_env = jax.random.split(key)
    params = {"w": jnp.zeros((obs_size, act)), "b": jnp.zeros((act,))}
    return _strong((params, env.reset(jax.random.split(k_env, num_envs)), key))

  def update(carry):
    params, state, key = carry

    def step(c, k):
      state = c
      obs = obs_of(state)
      mean = obs @ params["w"] + params["b"]
      action = mean + 0.3 * jax.random.normal(k, mean.shape)
      state = env.step(state, jnp.tanh(action))
      return state, (obs, action, state.reward, _pose(state))

    key, k_roll = jax.random.split(key)
    state, (obs, action, reward, pose) = jax.lax.scan(
      step, state, jax.random.split(k_roll, rollout)
    )
    advantage = reward - reward.mean()

    def loss(p):
      mean = obs @ p["w"] + p["b"]
      logp = -jnp.sum((action - mean) ** 2, -1) / (2 * 0.3**2)
      return -jnp.mean(logp * advantage)

    grads = jax.grad(loss)(params)
    params = jax.tree.map(lambda p, g: p - 1e-3 * g, params, grads)
    return _strong((params, state, key)), (reward.sum(0), pose)

  return jax.jit(init), jax.jit(update)


def _strong(tree: Any) -> Any:
  """Weak types dropped (envs return some state fields weakly typed)."""
  return jax.tree.map(
    lambda x: jnp.asarray(x).astype(jnp.asarray(x).dtype), tree
  )


def _pose(state: Any) -> jax.Array:
  physics = getattr(state, "pipeline_state", None)
  if physics is None:
    physics = state.data
  q = getattr(physics, "q", None)
  return physics.qpos if q is None else q


def without_viewer(tree: Any) -> Any:
  """A loop carry or state with the wrapper's entry taken out."""

  def strip(x):
    if hasattr(x, "info") and isinstance(x.info, dict) and KEY in x.info:
      return x.replace(info={k: v for k, v in x.info.items() if k != KEY})
    return x

  return jax.tree.map(strip, tree, is_leaf=lambda x: hasattr(x, "info"))


def same_bits(a: Any, b: Any) -> bool:
  la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
  return len(la) == len(lb) and all(
    np.asarray(x).dtype == np.asarray(y).dtype
    and np.array_equal(np.asarray(x), np.asarray(y))
    for x, y in zip(la, lb)
  )


def run_updates(update, carry, modes, viewer=None):
  """``update`` once per mode (the viewer switched before each call)."""
  outs = []
  for mode in modes:
    if viewer is not None:
      viewer.set_mode(mode)
    carry, out = update(carry)
    jax.block_until_ready((carry, out))
    jax.effects_barrier()
    outs.append(out)
  return carry, outs


# -- a toy batched env --------------------------------------------------------


@struct.dataclass
class Physics:
  q: jax.Array


class ToyEnv:
  """A batched env: ``q`` moves by the action, reward -q²."""

  dt = 0.05
  action_size = 2
  observation_size = 2

  def reset(self, rng: jax.Array) -> State:
    q = jax.vmap(lambda k: jax.random.normal(k, (2,)))(rng)
    zero = jnp.zeros(rng.shape[:1])
    return State(
      pipeline_state=Physics(q=q),
      obs=q,
      reward=zero,
      done=zero,
      metrics={"reward/q": zero},
      info={"speed": zero, "truncation": zero},
    )

  def step(self, state: State, action: jax.Array) -> State:
    q = state.pipeline_state.q + 0.1 * action
    reward = -jnp.sum(q**2, -1)
    info = dict(state.info)
    info["speed"] = jnp.linalg.norm(action, axis=-1)
    return state.replace(
      pipeline_state=Physics(q=q),
      obs=q,
      reward=reward,
      metrics={"reward/q": reward},
      info=info,
    )


def _obs(state: Any) -> jax.Array:
  return state.obs


def toy_loop(env: Any, rollout: int = 12) -> Tuple[Callable, Callable]:
  return purejaxrl_loop(env, 4, rollout, _obs)


# -- tests --------------------------------------------------------------------


def test_the_loop_computes_the_same_bits_without_the_wrapper_and_with_it_off_or_live():
  plain = toy_loop(ToyEnv())
  viewer = HeadlessViewer(num_envs=3, mode="off")
  wrapped = toy_loop(wrap(ToyEnv(), viewer, chunk_length=5))
  key = jax.random.PRNGKey(1)
  modes = ["off", "live", "sync", "off"]
  want = run_updates(plain[1], plain[0](key), modes)
  got = run_updates(wrapped[1], wrapped[0](key), modes, viewer)
  assert same_bits(want, without_viewer(got))
  assert len(viewer.chunks) > 0


def test_modes_switch_between_calls_without_recompiling_and_chunks_arrive_in_order():
  viewer = HeadlessViewer(num_envs=3, mode="off")
  env = wrap(ToyEnv(), viewer, chunk_length=6)
  init, update = toy_loop(env)  # 12 steps a call: 2 chunks
  carry = init(jax.random.PRNGKey(2))
  carry, _ = run_updates(update, carry, ["off"], viewer)  # compiles
  with count_compiles() as counter:
    carry, outs = run_updates(
      update, carry, ["live", "off", "sync", "live"], viewer
    )
  assert counter.count == 0
  assert viewer.trainer_modes == ["off", "live", "off", "sync", "live"]
  chunks = list(viewer.chunks)
  assert [c.seq for c in chunks] == list(range(6))
  # 6 steps of 4 envs per chunk; calls 2 (live), 4 (sync), 5 (live) sent
  assert [c.env_steps for c in chunks] == [24 * k for k in (3, 4, 7, 8, 9, 10)]
  assert all(c.qpos.shape == (6, 3, 2) for c in chunks)
  assert all(c.reward.shape == (6, 3) for c in chunks)
  # the poses are the loop's: the first 3 envs after each step
  poses = [np.asarray(outs[i][1][:, :3]) for i in (0, 2, 3)]
  np.testing.assert_array_equal(
    np.concatenate([c.qpos for c in chunks]), np.concatenate(poses)
  )
  info = viewer.stream_info
  assert info is not None
  assert (info.num_envs, info.num_train_envs, info.chunk_length) == (3, 4, 6)
  assert (info.kind, info.nq, info.dt) == ("qpos", 2, 0.05)
  assert info.reward_terms == ("reward/q",) and info.info_keys == ("speed",)
  assert chunks[0].info["speed"].shape == (6, 3)


def test_chunks_continue_across_calls_when_the_chunk_length_does_not_divide_them():
  viewer = HeadlessViewer(num_envs=1, mode="live")
  init, update = toy_loop(wrap(ToyEnv(), viewer, chunk_length=5))
  _, outs = run_updates(update, init(jax.random.PRNGKey(3)), ["live"] * 3)
  chunks = list(viewer.chunks)
  assert [c.seq for c in chunks] == list(range(7))  # 36 steps: 7 chunks
  poses = np.concatenate([np.asarray(o[1][:, :1]) for o in outs])
  np.testing.assert_array_equal(
    np.concatenate([c.qpos for c in chunks]), poses[:35]
  )


def test_reset_and_step_give_one_structure_and_the_inner_env_never_sees_the_entry():
  seen = []

  class Spy(ToyEnv):
    def step(self, state, action):
      seen.append(sorted(state.info))
      return super().step(state, action)

  env = wrap(Spy(), HeadlessViewer(num_envs=2, mode="off"), chunk_length=4)
  state = env.reset(jax.random.split(jax.random.PRNGKey(0), 4))
  after = env.step(state, jnp.ones((4, 2)))
  assert jax.tree.structure(state) == jax.tree.structure(after)
  assert [x.dtype for x in jax.tree.leaves(state)] == [
    x.dtype for x in jax.tree.leaves(after)
  ]
  assert seen == [["speed", "truncation"]]
  assert after.info[KEY]["frames"].shape[:2] == (4, 2)
  assert int(after.info[KEY]["count"]) == 1


def test_a_viewer_that_raises_is_switched_off_with_one_warning_and_the_loop_goes_on():
  class Broken(HeadlessViewer):
    def on_chunk(self, chunk):
      raise RuntimeError("boom")

  viewer = Broken(num_envs=2, mode="live")
  plain = toy_loop(ToyEnv())
  wrapped = toy_loop(wrap(ToyEnv(), viewer, chunk_length=4))
  key = jax.random.PRNGKey(4)
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    got = run_updates(wrapped[1], wrapped[0](key), ["live"] * 2)
  failures = [w for w in caught if issubclass(w.category, ViewerFailure)]
  assert len(failures) == 1 and "boom" in str(failures[0].message)
  want = run_updates(plain[1], plain[0](key), ["live"] * 2)
  assert same_bits(want, without_viewer(got))


def test_close_ends_the_stream_once_and_later_chunks_are_dropped():
  viewer = HeadlessViewer(num_envs=2, mode="live")
  with wrap(ToyEnv(), viewer, chunk_length=4) as env:
    init, update = toy_loop(env)
    carry, _ = run_updates(update, init(jax.random.PRNGKey(5)), ["live"])
  assert viewer.ended and len(viewer.chunks) == 3
  # the page says compiling while the loop compiles, then training
  assert viewer.phases == ["compiling", "training"]
  env.close()
  run_updates(update, carry, ["live"])
  assert len(viewer.chunks) == 3


def test_bad_arguments_are_refused_with_a_clear_error():
  viewer = HeadlessViewer(num_envs=2)
  with pytest.raises(TypeError, match="viewer="):
    wrap(ToyEnv(), object())
  with pytest.raises(ValueError, match="num_envs"):
    wrap(ToyEnv(), viewer, num_envs=0)
  with pytest.raises(ValueError, match="chunk_length"):
    wrap(ToyEnv(), viewer, chunk_length=0)
  keys = jax.random.split(jax.random.PRNGKey(0), 4)
  with pytest.raises(ValueError, match="exceeds the 4 envs"):
    wrap(ToyEnv(), HeadlessViewer(num_envs=5)).reset(keys)
  with pytest.raises(ValueError, match="nope"):
    wrap(ToyEnv(), HeadlessViewer(info_keys=("nope",))).reset(keys)
  with pytest.raises(ValueError, match="its own reset"):
    env = ToyEnv()
    wrap(env, viewer).step(env.reset(keys), jnp.zeros((4, 2)))


def test_the_original_names_reach_the_wrapper():
  import braxviewer.train.wrapper as module

  assert braxviewer.wrap is not None
  env = braxviewer.wrap(ToyEnv(), HeadlessViewer(), 2, chunk_length=3)
  assert isinstance(env, module.ViewerWrapper) and env.chunk_length == 3
  assert ViewerWrapper is module.ViewerWrapper


def test_an_axis_name_outside_pmap_streams_as_one_device():
  viewer = HeadlessViewer(num_envs=2, mode="live")
  env = wrap(ToyEnv(), viewer, chunk_length=6, axis_name="i")
  init, update = toy_loop(env)
  run_updates(update, init(jax.random.PRNGKey(6)), ["live"])
  assert [c.seq for c in viewer.chunks] == [0, 1]
  assert viewer.stream_info is not None
  assert viewer.stream_info.num_train_envs == 4


def test_one_mode_read_per_chunk_and_the_entry_counts_the_chunks_sent():
  viewer = HeadlessViewer(num_envs=2, mode="off")
  env = wrap(ToyEnv(), viewer, chunk_length=5)
  init, update = toy_loop(env)  # 12 steps a call
  key = jax.random.PRNGKey(7)
  carry, _ = run_updates(update, init(key), ["off", "live"], viewer)
  entry = carry[1].info[KEY]
  assert env._reads == 4  # 24 steps: 4 full chunks, one mode read each
  assert len(viewer.chunks) == 2  # the two of the live call
  assert int(entry["sent"]) == 2 and int(entry["flag"]) == 1
  assert int(entry["count"]) == 4 and int(entry["chunks"]) == 4


def test_the_jitted_loop_has_no_jax_effects_so_it_keeps_the_fast_dispatch():
  env = wrap(ToyEnv(), HeadlessViewer(num_envs=2), chunk_length=3)
  init, update = toy_loop(env)
  carry = init(jax.random.PRNGKey(8))
  assert not jax.make_jaxpr(update)(carry).effects


def test_gradients_flow_through_wrapped_steps_as_through_the_bare_env():
  def total_reward(env, action):
    state = env.reset(jax.random.split(jax.random.PRNGKey(9), 4))
    for _ in range(3):
      state = env.step(state, action)
    return jnp.sum(state.reward)

  viewer = HeadlessViewer(num_envs=2, mode="live")
  action = jnp.full((4, 2), 0.5)
  want = jax.jit(jax.grad(lambda a: total_reward(ToyEnv(), a)))(action)
  wrapped = wrap(ToyEnv(), viewer, chunk_length=2)
  got = jax.jit(jax.grad(lambda a: total_reward(wrapped, a)))(action)
  np.testing.assert_array_equal(np.asarray(want), np.asarray(got))
  assert len(viewer.chunks) == 1
