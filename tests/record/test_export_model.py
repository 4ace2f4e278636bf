"""Exported frames draw the recorded compiled model as MuJoCo does: mocap
bodies where the env put them, tendons and sites from qpos, each env at its
grid offset (MuJoCo offscreen via OSMesa/EGL)."""

from __future__ import annotations

import time

import av
import mujoco
import numpy as np
import pytest

from braxviewer.core.frames import FrameChunk
from braxviewer.core.timeline import RecentChunks
from braxviewer.record.export import render_clip
from braxviewer.record.offscreen import GridRenderer, look

ARM = """
<mujoco>
  <worldbody>
    <light pos="0 0 3" dir="0 0 -1"/>
    <geom name="floor" type="plane" size="0 0 1" rgba="0.9 0.9 0.9 1"/>
    <site name="anchor" pos="0 0 0.6" size="0.02"/>
    <body name="arm" pos="0 0 0.3">
      <joint name="hinge" type="hinge" axis="0 1 0"/>
      <geom type="capsule" fromto="0 0 0 0.3 0 0" size="0.03"
            rgba="0.1 0.3 0.9 1"/>
      <site name="tip" pos="0.3 0 0" size="0.02"/>
    </body>
    <body name="goal" mocap="true" pos="0 0.4 0.1">
      <geom name="goal" type="box" size="0.08 0.08 0.08" rgba="0.9 0.1 0.1 1"
            contype="0" conaffinity="0"/>
    </body>
  </worldbody>
  <tendon>
    <spatial name="string" width="0.01">
      <site site="anchor"/>
      <site site="tip"/>
    </spatial>
  </tendon>
</mujoco>
"""

OFFSETS = np.array([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0]])


@pytest.fixture
def model():
  return mujoco.MjModel.from_xml_string(ARM)


def _drawn(scene, objtype: mujoco.mjtObj, objid: int = -1) -> list:
  """Positions of the scene's geoms drawn for an object (any id: -1)."""
  return [
    np.array(scene.geoms[i].pos)
    for i in range(scene.ngeom)
    if scene.geoms[i].objtype == objtype
    and (objid < 0 or scene.geoms[i].objid == objid)
  ]


def test_mocap_bodies_are_drawn_where_each_env_put_them(model):
  goal = model.geom("goal").id
  mocap = np.array([[[0.5, 0.0, 0.1]], [[-0.5, 0.2, 0.1]]])
  with GridRenderer(model, 2, 96, 64) as renderer:
    renderer.render_qpos(np.zeros((2, 1)), OFFSETS, mocap_pos=mocap)
    drawn = _drawn(renderer.scene, mujoco.mjtObj.mjOBJ_GEOM, goal)
    np.testing.assert_allclose(drawn, mocap[:, 0] + OFFSETS, atol=1e-6)
    renderer.render_qpos(np.zeros((2, 1)), OFFSETS)  # none streamed
    drawn = _drawn(renderer.scene, mujoco.mjtObj.mjOBJ_GEOM, goal)
    np.testing.assert_allclose(drawn, [0.0, 0.4, 0.1] + OFFSETS, atol=1e-6)


def test_tendons_and_sites_follow_qpos_in_each_env(model):
  with GridRenderer(model, 2, 96, 64) as renderer:
    qpos = np.array([[0.0], [np.pi / 2]])  # env 1's arm points down
    renderer.render_qpos(qpos, OFFSETS)
    scene = renderer.scene
    tip = model.site("tip").id
    sites = _drawn(scene, mujoco.mjtObj.mjOBJ_SITE, tip)
    np.testing.assert_allclose(
      sites, [[0.3, 0.0, 0.3], [2.0, 0.0, 0.0]], atol=1e-6
    )
    tendons = _drawn(scene, mujoco.mjtObj.mjOBJ_TENDON)
    assert len(tendons) == 2  # one segment per env, each in its own cell
    assert sorted(round(float(p[0])) for p in tendons) == [0, 2]


def _chunk(frames: int, mocap_x: np.ndarray) -> FrameChunk:
  n = 1
  return FrameChunk(
    seq=0,
    source="train",
    env_steps=0,
    dt=0.05,
    reward=np.zeros((frames, n)),
    done=np.zeros((frames, n)),
    truncation=np.zeros((frames, n)),
    metrics={},
    wall_time=time.time(),
    qpos=np.zeros((frames, n, 1)),
    mocap_pos=np.stack(
      [mocap_x, np.full(frames, 0.4), np.full(frames, 0.1)], -1
    ).reshape(frames, n, 1, 3),
    mocap_quat=np.tile([1.0, 0, 0, 0], (frames, n, 1, 1)),
  )


def test_an_exported_clip_shows_the_mocap_body_moving(model, tmp_path):
  frames = 4
  timeline = RecentChunks()
  timeline.append(_chunk(frames, np.linspace(-0.2, 0.2, frames)))
  out = str(tmp_path / "goal.mp4")
  render_clip(
    timeline.chunks("train"),
    model,
    np.array([0]),
    out,
    camera="top",
    width=160,
    height=120,
  )
  with av.open(out) as container:
    images = [
      f.to_ndarray(format="rgb24").astype(int)
      for f in container.decode(container.streams.video[0])
    ]
  assert len(images) == frames

  def red_x(image: np.ndarray) -> float:
    red = (image[..., 0] > 150) & (image[..., 1] < 90) & (image[..., 2] < 90)
    assert red.sum() > 10  # the goal is in view
    return float(np.nonzero(red)[1].mean())

  xs = [red_x(image) for image in images]
  assert abs(xs[-1] - xs[0]) > 10  # it moved across the picture


def test_body_poses_alone_still_render(model):
  """Brax link poses (no qpos): bodies placed from their poses."""
  with GridRenderer(model, 1, 96, 64) as renderer:
    look(renderer.camera, np.zeros(3), 2.0, 90, -30)
    data = mujoco.MjData(model)
    mujoco.mj_kinematics(model, data)
    image = renderer.render(data.xpos[None], data.xquat[None])
    assert image.shape == (64, 96, 3) and image.std() > 5


TERRAIN = """
<mujoco>
  <asset>
    <hfield name="terrain" nrow="4" ncol="4" size="10 10 0.3 0.1"
      elevation="0 1 0 1  1 0 1 0  0 1 0 1  1 0 1 0"/>
  </asset>
  <worldbody>
    <light pos="0 0 5" dir="0 0 -1" directional="true"/>
    <geom type="hfield" hfield="terrain" rgba="0.5 0.6 0.5 1"/>
    <body name="robot" pos="3 2 0.6">
      <freejoint/>
      <geom type="box" size="0.2 0.15 0.1" rgba="0.9 0.1 0.1 1"/>
    </body>
  </worldbody>
</mujoco>
"""


def test_an_exported_clip_of_a_robot_on_terrain_frames_the_robot(tmp_path):
  model = mujoco.MjModel.from_xml_string(TERRAIN)
  frames = 2
  qpos = np.tile(model.qpos0, (frames, 1, 1))
  chunk = FrameChunk(
    seq=0,
    source="train",
    env_steps=0,
    dt=0.05,
    reward=np.zeros((frames, 1)),
    done=np.zeros((frames, 1)),
    truncation=np.zeros((frames, 1)),
    metrics={},
    wall_time=time.time(),
    qpos=qpos,
  )
  timeline = RecentChunks()
  timeline.append(chunk)
  out = str(tmp_path / "terrain.mp4")
  render_clip(
    timeline.chunks("train"), model, np.array([0]), out, width=160, height=120
  )
  with av.open(out) as container:
    image = next(container.decode(container.streams.video[0]))
    rgb = image.to_ndarray(format="rgb24").astype(int)
  red = (rgb[..., 0] > 140) & (rgb[..., 1] < 90) & (rgb[..., 2] < 90)
  # the 0.4 m robot fills a fair part of the picture, not the 20 m world
  assert red.mean() > 0.03
