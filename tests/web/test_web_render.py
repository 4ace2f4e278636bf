"""The envs' geometry: every geom drawn where MuJoCo puts it."""

from __future__ import annotations

import os

import brax
import mujoco
import numpy as np
from viser.transforms import SO3

from braxviewer.scene.batched import BatchedScene
from braxviewer.web.primitives import Parts


def test_drawn_shapes_sit_where_mujoco_puts_the_geoms():
  path = os.path.join(os.path.dirname(brax.__file__), "envs/assets/ant.xml")
  model = mujoco.MjModel.from_xml_path(path)
  scene = BatchedScene(model, 3, env_offset=(2.0, 2.0, 2.0))
  rng = np.random.default_rng(1)
  qpos = np.tile(model.qpos0, (3, 1)) + rng.normal(0, 0.3, (3, model.nq))
  poses = scene.poses_from_qpos(qpos)
  parts = Parts(model)
  drawn = {}  # geom centre -> count, from every shape's instances
  for shape in parts.shapes:
    pos, quat = parts.poses(shape, poses.xpos, poses.xquat)
    axis = SO3(quat).apply(np.array([0.0, 0.0, 1.0]))
    drawn[shape.kind] = (pos.reshape(3, -1, 3), axis.reshape(3, -1, 3))
  data = mujoco.MjData(model)
  for env in range(3):
    data.qpos[:] = qpos[env]
    mujoco.mj_kinematics(model, data)
    want = data.geom_xpos[model.geom_type != 0] + scene.offsets[env]
    got = np.concatenate([p[env] for p, _ in drawn.values()])
    # every drawn centre is a MuJoCo geom centre (to 1e-9 m), and all are drawn
    near = np.linalg.norm(got[:, None] - want[None], axis=-1)
    assert near.min(axis=1).max() < 1e-9 and len(got) == len(want)
    # ... and points its axis the way MuJoCo orients the geom
    axes = np.concatenate([a[env] for _, a in drawn.values()])
    want_axes = data.geom_xmat.reshape(-1, 3, 3)[model.geom_type != 0, :, 2]
    match = want_axes[near.argmin(axis=1)]
    assert np.allclose(np.abs(np.sum(axes * match, axis=1)), 1.0, atol=1e-9)
