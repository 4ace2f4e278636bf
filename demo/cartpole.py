"""Train a custom CartPole env and watch one env learn, live, in the browser.

The env is defined right here from an inline MJCF string, the way a user
brings their own robot. Run:

    python demo/cartpole.py            # then open http://127.0.0.1:8000
"""

from __future__ import annotations

from brax import envs
from brax.envs.base import PipelineEnv, State
from brax.io import mjcf
import jax
import jax.numpy as jnp

from braxviewer.app import cli, compile_cache
from braxviewer.brax.training.agents.ppo import train as ppo
from braxviewer.WebViewer import WebViewer

CARTPOLE_XML = """
<mujoco model="cartpole">
  <option timestep="0.01"/>
  <default>
    <geom contype="0" conaffinity="0"/>
  </default>
  <worldbody>
    <light pos="0 0 4" dir="0 0 -1"/>
    <geom name="floor" type="plane" size="2 2 0.1" rgba="0.85 0.87 0.9 1"/>
    <geom name="rail" type="capsule" fromto="-1.5 0 1 1.5 0 1" size="0.015"
          rgba="0.35 0.35 0.45 1"/>
    <body name="cart" pos="0 0 1">
      <joint name="slider" type="slide" axis="1 0 0" limited="true"
             range="-1.4 1.4" damping="0.1"/>
      <geom name="cart" type="box" size="0.15 0.1 0.05" mass="1"
            rgba="0.85 0.55 0.25 1"/>
      <body name="pole">
        <joint name="hinge" type="hinge" axis="0 1 0" damping="0.01"/>
        <geom name="pole" type="capsule" fromto="0 0 0 0 0 0.6" size="0.03"
              mass="0.1" rgba="0.2 0.55 0.85 1"/>
      </body>
    </body>
  </worldbody>
  <actuator>
    <motor joint="slider" gear="10" ctrllimited="true" ctrlrange="-1 1"/>
  </actuator>
</mujoco>
"""


class CartPole(PipelineEnv):
  """Balance a pole on a cart. Reward terms: upright, centered, control."""

  def __init__(
    self, xml_model: str = CARTPOLE_XML, backend: str = "generalized", **kwargs
  ):
    sys_ = mjcf.loads(xml_model)
    kwargs.setdefault("n_frames", 2)
    super().__init__(sys_, backend=backend, **kwargs)

  def reset(self, rng: jax.Array) -> State:
    rng_q, rng_qd = jax.random.split(rng)
    q = self.sys.init_q + jax.random.uniform(
      rng_q, (self.sys.q_size(),), minval=-0.1, maxval=0.1
    )
    qd = jax.random.uniform(
      rng_qd, (self.sys.qd_size(),), minval=-0.1, maxval=0.1
    )
    pipeline_state = self.pipeline_init(q, qd)
    zero = jnp.zeros(())
    metrics = {"upright": zero, "centered": zero, "control": zero}
    return State(pipeline_state, self._obs(pipeline_state), zero, zero, metrics)

  def step(self, state: State, action: jax.Array) -> State:
    pipeline_state = self.pipeline_step(state.pipeline_state, action)
    x, angle = pipeline_state.q[0], pipeline_state.q[1]
    upright = jnp.cos(angle)
    centered = -0.1 * jnp.square(x)
    control = -0.01 * jnp.sum(jnp.square(action))
    reward = upright + centered + control
    done = jnp.where((jnp.abs(angle) > 0.8) | (jnp.abs(x) > 1.35), 1.0, 0.0)
    state.metrics.update(upright=upright, centered=centered, control=control)
    return state.replace(
      pipeline_state=pipeline_state,
      obs=self._obs(pipeline_state),
      reward=reward,
      done=done,
    )

  def _obs(self, pipeline_state) -> jax.Array:
    q, qd = pipeline_state.q, pipeline_state.qd
    return jnp.concatenate([q[:1], jnp.sin(q[1:]), jnp.cos(q[1:]), qd])


envs.register_environment("braxviewer_cartpole", CartPole)


def _one_view_env(args) -> None:
  if args.view_envs != 1:
    raise cli.UsageError(
      "this demo shows one env; use demo/cartpole_batched.py for a grid."
    )


def main(argv=None) -> int:
  parser = cli.demo_parser(
    __doc__, num_envs=128, view_envs=1, timesteps=300_000
  )
  args = cli.parse_demo_args(parser, argv, prepare=_one_view_env)
  compile_cache.enable()  # on a GPU, a second run skips compiling

  env = CartPole()
  viewer = WebViewer(
    host=args.host, port=args.port, mode=args.mode, layout=args.layout
  )
  with cli.training_session(viewer, verbose=args.verbose) as session:
    viewer.run()
    viewer.init(env)
    session.train(
      ppo.train,
      environment=env,
      **cli.ppo_config(args, episode_length=500, num_evals=10),
    )
    if args.keep_open:
      session.keep_open()
  return session.exit_code


if __name__ == "__main__":
  cli.exit_with(main())
