"""Watch your own jitted training loop: braxviewer.wrap around the batched env.

No braxviewer trainer here: a purejaxrl-style loop (``lax.scan`` over env
steps, a linear Gaussian policy, a REINFORCE update with a learned baseline)
steps brax's ``inverted_pendulum``, and ``braxviewer.wrap`` streams its first
N envs to the page, every ``--chunk`` steps. Switch off / live / sync in the
page: the loop never recompiles and computes the same bits either way.

    python demo/custom_loop.py --view-envs 8   # http://127.0.0.1:8000
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, Optional, Tuple

from brax import envs
from brax.envs.wrappers import training
import jax
import jax.numpy as jnp

import braxviewer
from braxviewer.app import cli
from braxviewer.WebViewerBatched import WebViewerBatched

SIGMA = 0.3  # the policy's exploration noise
Carry = Tuple[Dict[str, jax.Array], Any, jax.Array]


def batched_env(name: str = "inverted_pendulum", episode_length: int = 200):
  """A brax env, batched and auto-reset as brax's trainers wrap it."""
  env = envs.get_environment(name, backend="generalized")
  return training.wrap(env, episode_length=episode_length)


def _strong(tree: Any) -> Any:
  """Weak types dropped: a re-fed carry compiles nothing new."""
  return jax.tree.map(lambda x: jnp.asarray(x).astype(x.dtype), tree)


def make_loop(
  env: Any, num_envs: int, rollout: int, lr: float = 1e-2
) -> Tuple[Callable[[jax.Array], Carry], Callable[[Carry], Tuple[Carry, Any]]]:
  """``init(key) -> carry`` and ``update(carry) -> (carry, (reward sum,
  episodes ended))``,
  both jitted: one update is a ``rollout``-step ``lax.scan`` over the
  batched env and one policy-gradient step."""
  obs_size = int(env.observation_size)
  act_size = int(env.action_size)

  def init(key: jax.Array) -> Carry:
    key, k_env = jax.random.split(key)
    params = {
      "w": jnp.zeros((obs_size, act_size)),
      "b": jnp.zeros((act_size,)),
      "v": jnp.zeros((obs_size,)),  # a linear baseline
    }
    return _strong((params, env.reset(jax.random.split(k_env, num_envs)), key))

  def update(carry: Carry) -> Tuple[Carry, Any]:
    params, state, key = carry

    def step(state: Any, k: jax.Array):
      obs = state.obs
      mean = obs @ params["w"] + params["b"]
      action = mean + SIGMA * jax.random.normal(k, mean.shape)
      state = env.step(state, jnp.clip(action, -1.0, 1.0))
      return state, (obs, action, state.reward, state.done)

    key, k_roll = jax.random.split(key)
    state, (obs, action, reward, done) = jax.lax.scan(
      step, state, jax.random.split(k_roll, rollout)
    )

    def returns(later: jax.Array, x: Tuple[jax.Array, jax.Array]):
      r, d = x
      now = r + 0.97 * later * (1.0 - d)
      return now, now

    _, ret = jax.lax.scan(
      returns, jnp.zeros_like(reward[0]), (reward, done), reverse=True
    )

    def loss(p: Dict[str, jax.Array]) -> jax.Array:
      value = obs @ p["v"]
      adv = jax.lax.stop_gradient(ret - value)
      mean = obs @ p["w"] + p["b"]
      logp = -jnp.sum((action - mean) ** 2, -1) / (2 * SIGMA**2)
      return -jnp.mean(logp * adv) + 0.5 * jnp.mean((ret - value) ** 2)

    grads = jax.grad(loss)(params)
    params = jax.tree.map(lambda p, g: p - lr * g, params, grads)
    return _strong((params, state, key)), (jnp.sum(reward), jnp.sum(done))

  return jax.jit(init), jax.jit(update)


def train(
  viewer: Any,
  progress_fn: Callable[[int, dict], None],
  *,
  env: Any,
  num_envs: int,
  view_envs: int,
  timesteps: int,
  seed: int,
  chunk: int,
  rollout: int = 64,
) -> Dict[str, jax.Array]:
  """The loop over ``env`` (batched) with ``braxviewer.wrap``. Every ~2 s
  and at the end it reports a rollout's reward per ended episode
  (``eval/episode_reward``) at the env steps where that rollout began."""
  wrapped = braxviewer.wrap(env, viewer, view_envs, chunk_length=chunk)
  init, update = make_loop(wrapped, num_envs, rollout)
  carry = init(jax.random.PRNGKey(seed))
  steps, last = 0, None
  with wrapped:  # ends the stream
    while steps < timesteps:
      began = steps
      carry, (reward, ended) = update(carry)
      steps += rollout * num_envs
      now = time.monotonic()
      if last is None or now - last > 2.0 or steps >= timesteps:
        last = now
        score = float(reward) / max(float(ended), 1.0)
        progress_fn(began, {"eval/episode_reward": score})
  return carry[0]


def main(argv: Optional[list] = None) -> int:
  parser = cli.demo_parser(
    __doc__, num_envs=128, view_envs=8, timesteps=2_000_000
  )
  parser.add_argument(
    "--chunk", type=int, default=64, help="frames per streamed chunk"
  )
  args = cli.parse_demo_args(parser, argv)
  viewer = WebViewerBatched(
    num_envs=args.view_envs,
    host=args.host,
    port=args.port,
    mode=args.mode,
    layout=args.layout,
  )
  with cli.training_session(viewer, verbose=args.verbose) as session:
    env = batched_env()
    viewer.run()
    viewer.init(env)
    session.train(
      train,
      env=env,
      num_envs=args.num_envs,
      view_envs=args.view_envs,
      timesteps=args.timesteps,
      seed=args.seed,
      chunk=args.chunk,
    )
    if args.keep_open:
      session.keep_open()
  return session.exit_code


if __name__ == "__main__":
  cli.exit_with(main())
