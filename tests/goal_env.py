"""A tiny brax env (mjx backend) that moves mocap bodies and keeps per-env
``state.info``: what the mocap and info tests stream.

An arm on a hinge reaches for a goal. The goal is a mocap body the env puts
at a random place on reset and turns about the z axis every step; a second
mocap body (a marker with a child body) is turned in place, so its
orientation and its child move too. ``state.info`` holds what a MuJoCo
Playground joystick env would: a PRNG key, a velocity ``command``, a
curriculum ``level`` and a nested counter.
"""

from __future__ import annotations

from brax.envs.base import PipelineEnv, State
from brax.io import mjcf
import jax
import jax.numpy as jnp
import mujoco

XML = """
<mujoco>
  <option timestep="0.02"/>
  <default><geom contype="0" conaffinity="0"/></default>
  <worldbody>
    <geom type="plane" size="1 1 .1"/>
    <body name="arm" pos="0 0 .05">
      <joint name="hinge" type="hinge" axis="0 0 1" damping="0.1"/>
      <geom type="capsule" fromto="0 0 0 .2 0 0" size=".02" mass="0.1"/>
    </body>
    <body name="goal" mocap="true" pos=".25 0 .05">
      <geom type="sphere" size=".03"/>
    </body>
    <body name="marker" mocap="true" pos="0 .3 .1"
          quat="0.7071068 0 0 0.7071068">
      <geom type="box" size=".02 .04 .01"/>
      <body name="flag" pos=".1 0 .05">
        <geom type="sphere" size=".01"/>
      </body>
    </body>
  </worldbody>
  <actuator><motor joint="hinge" gear="1" ctrlrange="-1 1"/></actuator>
</mujoco>
"""

TURN = 0.1  # radians the goal and the marker turn each step


def _z_quat(angle: jax.Array) -> jax.Array:
  return jnp.array([jnp.cos(angle / 2), 0.0, 0.0, jnp.sin(angle / 2)])


def _quat_mul(a: jax.Array, b: jax.Array) -> jax.Array:
  w1, x1, y1, z1 = a
  w2, x2, y2, z2 = b
  return jnp.array(
    [
      w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
      w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
      w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
      w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
    ]
  )


class GoalEnv(PipelineEnv):
  """Reach a goal that moves (two mocap bodies; brax ``mjx`` backend)."""

  def __init__(self):
    self.mj_model = mujoco.MjModel.from_xml_string(XML)
    super().__init__(mjcf.load_model(self.mj_model), backend="mjx", n_frames=1)

  def reset(self, rng: jax.Array) -> State:
    rng, k_q, k_goal, k_turn = jax.random.split(rng, 4)
    q = jax.random.uniform(k_q, (self.sys.q_size(),), minval=-1.0, maxval=1.0)
    ps = self.pipeline_init(q, jnp.zeros(self.sys.qd_size()))
    angle = jax.random.uniform(k_goal, (), maxval=2 * jnp.pi)
    radius = 0.15 + 0.1 * jax.random.uniform(k_goal, ())
    goal = jnp.array([radius * jnp.cos(angle), radius * jnp.sin(angle), 0.05])
    turn = _z_quat(jax.random.uniform(k_turn, (), maxval=2 * jnp.pi))
    ps = ps.replace(
      mocap_pos=ps.mocap_pos.at[0].set(goal),
      mocap_quat=ps.mocap_quat.at[1].set(_quat_mul(turn, ps.mocap_quat[1])),
    )
    info = {
      "rng": rng,
      "command": jnp.array([jnp.cos(angle), jnp.sin(angle), 0.5]),
      "level": jnp.zeros(()),
      "counts": {"near": jnp.zeros((), jnp.int32)},
    }
    reward, done = jnp.zeros(2)
    metrics = {"distance": self._distance(ps)}
    return State(ps, self._obs(ps), reward, done, metrics, info)

  def step(self, state: State, action: jax.Array) -> State:
    ps = self.pipeline_step(state.pipeline_state, action)
    c, s = jnp.cos(TURN), jnp.sin(TURN)
    x, y, z = ps.mocap_pos[0]
    ps = ps.replace(
      mocap_pos=ps.mocap_pos.at[0].set(
        jnp.array([c * x - s * y, s * x + c * y, z])
      ),
      mocap_quat=ps.mocap_quat.at[1].set(
        _quat_mul(_z_quat(jnp.array(TURN)), ps.mocap_quat[1])
      ),
    )
    distance = self._distance(ps)
    info = dict(state.info)
    info["level"] = state.info["level"] + 1.0
    info["counts"] = {
      "near": state.info["counts"]["near"] + (distance < 0.1).astype(jnp.int32)
    }
    state.metrics.update(distance=distance)
    return state.replace(
      pipeline_state=ps, obs=self._obs(ps), reward=-distance, info=info
    )

  def _distance(self, ps) -> jax.Array:
    tip = ps.x.pos[0] + jnp.array(
      [0.2 * jnp.cos(ps.q[0]), 0.2 * jnp.sin(ps.q[0]), 0.0]
    )
    return jnp.linalg.norm(tip - ps.mocap_pos[0])

  def _obs(self, ps) -> jax.Array:
    return jnp.concatenate(
      [jnp.cos(ps.q), jnp.sin(ps.q), ps.qd, ps.mocap_pos[0]]
    )
