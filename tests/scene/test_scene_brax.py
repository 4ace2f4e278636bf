"""Poses from streamed brax frames equal the env's own body poses, on all
four brax backends: from qpos on mjx / generalized, from link poses on
positional / spring (where qpos does not reproduce the bodies).

On mjx, like MuJoCo's mj_step, the state's body poses are computed before the
physics step integrates: ``x`` / ``xpos`` after a step belong to the ``q``
before its last substep (envs here use one substep per env step, so that is
the previous streamed frame); the streamed ``q`` is the newer state.
"""

import importlib
import pathlib
import warnings

import brax
from brax import envs
from brax.io import mjcf
import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest

from braxviewer.core.frames import FrameChunk
from braxviewer.scene.batched import BatchedScene

pytestmark = pytest.mark.slow  # compiles JAX programs of 4 backends

warnings.filterwarnings("ignore", message="Brax System, piplines")

NUM_ENVS = 3
STEPS = 4
ASSETS = sorted(
  (pathlib.Path(brax.__file__).parent / "envs" / "assets").glob("*.xml")
)

# A free-floating body with a hinged arm, tumbling (no contacts: cheap).
TUMBLER = """
<mujoco model="tumbler">
  <option timestep="0.01"/>
  <worldbody>
    <body name="base" pos="0.3 -0.2 1.0" euler="10 20 30">
      <freejoint name="root"/>
      <geom type="box" size=".1 .2 .05" contype="0" conaffinity="0"/>
      <body name="arm" pos="0.1 0 0">
        <joint name="hinge" type="hinge" axis="0 1 1" pos="0.05 0 0"
               range="-1 1"/>
        <geom type="capsule" fromto="0 0 0 .3 0 0" size=".03" contype="0"
              conaffinity="0"/>
      </body>
    </body>
  </worldbody>
  <actuator><motor joint="hinge" gear="5"/></actuator>
</mujoco>
"""


def _chunk(q=None, link_pos=None, link_rot=None):
  zeros = np.zeros((STEPS, NUM_ENVS), np.float32)

  def to_np(x):
    return None if x is None else np.asarray(x)

  return FrameChunk(
    seq=0,
    source="train",
    env_steps=0,
    dt=0.01,
    reward=zeros,
    done=zeros,
    truncation=zeros,
    metrics={},
    wall_time=0.0,
    qpos=to_np(q),
    link_pos=to_np(link_pos),
    link_rot=to_np(link_rot),
  )


def _check(scene, backend, q_prev, q, x_pos, x_rot, xpos=None):
  """The scene's poses of the streamed frames against brax's own."""
  offsets = scene.offsets[None, :, None, :]
  if backend in ("mjx", "generalized"):
    poses = scene.poses(_chunk(q=q_prev if backend == "mjx" else q))
    np.testing.assert_allclose(
      poses.xpos[..., 1:, :] - offsets, x_pos, rtol=0, atol=1e-5
    )
    if xpos is not None:  # mjx also keeps MuJoCo's xpos, world body included
      np.testing.assert_allclose(poses.xpos - offsets, xpos, rtol=0, atol=1e-5)
  else:
    poses = scene.poses(_chunk(link_pos=x_pos, link_rot=x_rot))
    np.testing.assert_array_equal(
      poses.xpos[..., 1:, :], np.asarray(x_pos, np.float64) + offsets
    )
    np.testing.assert_array_equal(
      poses.xquat[..., 1:, :], np.asarray(x_rot, np.float64)
    )
  assert poses.valid.all()
  assert poses.xpos.shape == (STEPS, NUM_ENVS, scene.nbody, 3)


@pytest.mark.parametrize("path", ASSETS, ids=lambda p: p.stem)
def test_brax_links_are_the_mujoco_bodies_in_order(path):
  sys = mjcf.load(str(path))
  model = sys.mj_model
  names = [model.body(b).name for b in range(1, model.nbody)]
  assert list(sys.link_names) == names
  assert sys.num_links() == model.nbody - 1


@pytest.mark.parametrize(
  "backend", ["mjx", "generalized", "positional", "spring"]
)
def test_env_body_poses_from_streamed_frames(backend):
  env = envs.get_environment("inverted_pendulum", backend=backend, n_frames=1)

  @jax.jit
  def rollout(key):  # reset and a few steps with random actions, vmapped
    keys = jax.random.split(key, NUM_ENVS + 1)
    state = jax.vmap(env.reset)(keys[1:])
    actions = jax.random.uniform(
      keys[0], (STEPS, NUM_ENVS, env.action_size), minval=-1.0, maxval=1.0
    )

    def step(state, action):
      q_prev = state.pipeline_state.q
      state = jax.vmap(env.step)(state, action)
      ps = state.pipeline_state
      return state, (
        q_prev,
        ps.q,
        ps.x.pos,
        ps.x.rot,
        getattr(ps, "xpos", jnp.zeros(())),
      )

    return jax.lax.scan(step, state, actions)[1]

  q_prev, q, x_pos, x_rot, xpos = rollout(jax.random.PRNGKey(0))
  scene = BatchedScene(env.sys.mj_model, NUM_ENVS)
  assert np.ptp(np.asarray(q), axis=0).max() > 1e-4  # the envs moved
  _check(
    scene, backend, q_prev, q, x_pos, x_rot, xpos if backend == "mjx" else None
  )


@pytest.mark.parametrize("backend", ["mjx", "generalized"])
def test_free_joint_body_poses_from_qpos(backend):
  sys = mjcf.loads(TUMBLER)
  pipeline = importlib.import_module(f"brax.{backend}.pipeline")

  @jax.jit
  def rollout(qd0):
    def one(qd):
      state = pipeline.init(sys, sys.init_q, qd)

      def step(state, action):
        q_prev = state.q
        state = pipeline.step(sys, state, action)
        return state, (q_prev, state.q, state.x.pos, state.x.rot)

      return jax.lax.scan(step, state, jnp.full((STEPS, 1), 0.5))[1]

    out = jax.vmap(one)(qd0)
    return jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), out)  # (T, N, ...)

  qd0 = 2.0 * jax.random.normal(
    jax.random.PRNGKey(1), (NUM_ENVS, sys.qd_size())
  )
  q_prev, q, x_pos, x_rot = rollout(qd0)
  model = sys.mj_model
  assert model.jnt_type[0] == int(mujoco.mjtJoint.mjJNT_FREE)
  assert np.ptp(np.asarray(q)[..., :3], axis=0).max() > 1e-3  # it flew
  scene = BatchedScene(model, NUM_ENVS)
  _check(scene, backend, q_prev, q, x_pos, x_rot)
