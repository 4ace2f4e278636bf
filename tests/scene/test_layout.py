"""Terrain-aware layout: a mobile robot on terrain is drawn where it is on
one shared world (overlay), a fixed-base env keeps its arena in its grid
cell, and cameras, markers and cells are sized to the robot, not the world.

No browser: a real viser server, the scene read back from its handles.
"""

from __future__ import annotations

import math

import mujoco
import numpy as np
import pytest
import viser

from braxviewer import WebViewerBatched
from braxviewer.scene import grid
from braxviewer.scene.batched import BatchedScene
from braxviewer.scene.layout import choose_layout
from braxviewer.web.camera import Viewport
from braxviewer.web.render import SceneView
from braxviewer.web.replay import ReplayViewer

# A small free box "robot" (0.4 x 0.3 x 0.2 m, a capsule antenna on a hinge)
# on a 20 x 20 m heightfield, elevations given inline.
ROBOT = """
    <body name="robot" pos="0 0 0.6">
      <freejoint/>
      <geom type="box" size="0.2 0.15 0.1" rgba="0.9 0.2 0.2 1"/>
      <body name="antenna" pos="0.1 0 0.1">
        <joint type="hinge" axis="0 1 0"/>
        <geom type="capsule" fromto="0 0 0 0 0 0.15" size="0.02"/>
      </body>
    </body>"""
HFIELD = f"""<mujoco>
  <asset>
    <hfield name="terrain" nrow="4" ncol="4" size="10 10 0.5 0.1"
      elevation="0 1 0 1  1 0 1 0  0 1 0 1  1 0 1 0"/>
  </asset>
  <worldbody>
    <geom name="ground" type="hfield" hfield="terrain"/>{ROBOT}
  </worldbody>
</mujoco>"""
PLANE_FIRST = '<worldbody><geom type="plane" size="0 0 1"/>'
BOX_TERRAIN = f"""<mujoco><worldbody>
    <geom name="ground" type="plane" size="0 0 1"/>
    <geom name="slab" type="box" size="10 10 0.05" pos="0 0 0.05"/>
    <geom name="step" type="box" size="1 3 0.1" pos="4 0 0.15"/>{ROBOT}
  </worldbody></mujoco>"""
CARTPOLE = """<mujoco><worldbody>
    <geom name="floor" type="plane" size="0 0 1"/>
    <geom name="rail" type="capsule" fromto="-2 0 1 2 0 1" size="0.02"/>
    <body name="cart" pos="0 0 1">
      <joint name="slider" type="slide" axis="1 0 0"/>
      <geom type="box" size="0.2 0.1 0.05"/>
      <body name="pole"><joint type="hinge" axis="0 1 0"/>
        <geom type="capsule" fromto="0 0 0 0 0 0.6" size="0.03"/></body>
    </body>
  </worldbody></mujoco>"""
HUMANOID = """<mujoco><worldbody>
    <geom name="floor" type="plane" size="0 0 1"/>
    <body name="torso" pos="0 0 1.3"><freejoint/>
      <geom type="capsule" fromto="0 -0.07 0 0 0.07 0" size="0.07"/>
      <body name="thigh" pos="0 0 -0.3"><joint type="hinge" axis="0 1 0"/>
        <geom type="capsule" fromto="0 0 0 0 0 -0.8" size="0.05"/></body>
    </body>
  </worldbody></mujoco>"""
ARENA = """<mujoco><worldbody>
    <geom name="ground" type="plane" size="0 0 1"/>
    <geom name="wall_n" type="box" size="0.6 0.02 0.05" pos="0 0.6 0.05"/>
    <geom name="wall_s" type="box" size="0.6 0.02 0.05" pos="0 -0.6 0.05"/>
    <geom name="wall_e" type="box" size="0.02 0.6 0.05" pos="0.6 0 0.05"/>
    <geom name="wall_w" type="box" size="0.02 0.6 0.05" pos="-0.6 0 0.05"/>
    <body name="arm" pos="0 0 0.05"><joint type="hinge" axis="0 0 1"/>
      <geom type="capsule" fromto="0 0 0 0.12 0 0" size="0.01"/></body>
  </worldbody></mujoco>"""


def model_of(xml: str) -> mujoco.MjModel:
  return mujoco.MjModel.from_xml_string(xml)


@pytest.fixture
def server():
  server = viser.ViserServer(port=0, verbose=False)
  yield server
  server.stop()


def scattered(scene: BatchedScene, seed: int = 0) -> np.ndarray:
  """qpos of every env: robots spread over the terrain."""
  model = scene.single_model
  qpos = np.tile(model.qpos0, (scene.num_envs, 1))
  rng = np.random.default_rng(seed)
  qpos[:, :2] = rng.uniform(-8, 8, (scene.num_envs, 2))
  return qpos


def instances(handle) -> int:
  return len(handle.batched_positions)


# -- the choice ------------------------------------------------------------------


def test_auto_overlays_a_mobile_robot_on_a_heightfield_or_big_terrain():
  for xml in (HFIELD, BOX_TERRAIN):
    scene = BatchedScene(model_of(xml), 16)
    assert scene.layout == "overlay"
    assert np.all(scene.offsets == 0)  # every env where it really is


@pytest.mark.parametrize("xml", [CARTPOLE, HUMANOID, ARENA])
def test_auto_keeps_a_grid_for_fixed_bases_and_robots_on_a_plane(xml):
  scene = BatchedScene(model_of(xml), 4)
  assert scene.layout == "grid"
  assert len({tuple(o) for o in scene.offsets}) == 4  # a cell each


def test_the_layout_can_be_chosen_either_way():
  humanoid = BatchedScene(model_of(HUMANOID), 4, layout="overlay")
  assert humanoid.layout == "overlay" and np.all(humanoid.offsets == 0)
  terrain = BatchedScene(model_of(HFIELD), 4, layout="grid")
  assert terrain.layout == "grid"
  # robot-sized cells (the robot is 0.4 m long), not 20 m terrain tiles
  assert 0.4 < terrain.env_offset[0] < 1.5
  # a spacing asked for under auto means a grid
  spaced = BatchedScene(model_of(HFIELD), 4, env_offset=(3.0, 3.0, 0.0))
  assert spaced.layout == "grid" and spaced.offsets[1, 0] == 3.0


def test_a_bad_layout_is_refused_naming_the_choices():
  model = model_of(HFIELD)
  for make in (
    lambda: BatchedScene(model, 4, layout="tiles"),
    lambda: WebViewerBatched(num_envs=4, port=0, layout="tiles"),
    lambda: ReplayViewer("/no/such/recording", port=0, layout="tiles"),
  ):
    with pytest.raises(ValueError, match="'grid', 'overlay', 'auto'"):
      make()
  with pytest.raises(ValueError, match="env_offset"):
    choose_layout(model, "overlay", env_offset=(2.0, 2.0, 0.0))
  with pytest.raises(ValueError, match="env_offset"):
    WebViewerBatched(num_envs=4, port=0, layout="overlay", env_offset=(1, 1))


# -- cell sizes -------------------------------------------------------------------


def test_grid_cells_for_a_free_robot_on_big_terrain_fit_the_robot():
  spacing = grid.default_env_offset(model_of(BOX_TERRAIN))
  # the robot reaches ~0.45 m (the antenna tips): cells of about a metre,
  # square (it can tip over), not 20 m
  assert spacing[0] == spacing[1]
  assert 0.45 < spacing[0] < 1.5


def test_a_fixed_base_arena_keeps_its_walls_in_its_cell():
  spacing = grid.default_env_offset(model_of(ARENA))
  assert np.all(spacing[:2] > 1.24)  # walls 1.24 m apart, outside to outside
  scene = BatchedScene(model_of(ARENA), 4)
  assert scene.layout == "grid"
  # and every env draws its own walls, in its cell
  server = viser.ViserServer(port=0, verbose=False)
  try:
    view = SceneView(server, scene.single_model, scene.offsets)
    boxes = [s for s in view._parts.shapes if s.kind == "box"]
    assert sum(s.num_parts for s in boxes) == 4  # per env: four walls
    assert not view._world.shapes  # nothing shared
    assert view.cell_extent > 0.6 > view.extent  # the cell holds the walls
  finally:
    server.stop()


# -- drawing ----------------------------------------------------------------------


def test_overlay_draws_the_world_once_and_each_robot_where_it_is(server):
  model = model_of(BOX_TERRAIN)
  scene = BatchedScene(model, 16)
  poses = scene.poses_from_qpos(scattered(scene))
  view = SceneView(server, model, scene.offsets, layout=scene.layout)
  view.show(poses.xpos, poses.xquat)
  # the two static boxes: one instance each, for all 16 envs
  assert sum(s.num_parts for s in view._world.shapes) == 2
  assert sum(instances(h) for h in view._world._handles) == 2
  # the robot's box and antenna: 16 instances each, at the real positions
  drawn = {}
  for shape, handles in zip(view._parts.shapes, view._meshes.handles):
    drawn[shape.kind] = np.concatenate(
      [h.batched_positions for h in handles if h.visible]
    )
  assert sorted(len(p) for p in drawn.values()) == [16, 16]
  data = mujoco.MjData(model)
  want = []
  for qpos in scattered(scene):
    data.qpos[:] = qpos
    mujoco.mj_kinematics(model, data)
    want.append(data.geom_xpos[model.geom_bodyid == 1][0])
  got = np.sort(drawn["box"][:, 0])
  np.testing.assert_allclose(got, np.sort(np.asarray(want)[:, 0]), atol=1e-5)


def test_a_grid_on_terrain_draws_the_terrain_once_too(server):
  model = model_of(HFIELD)
  scene = BatchedScene(model, 9, layout="grid")
  view = SceneView(server, model, scene.offsets, layout="grid")
  assert sum(s.num_parts for s in view._world.shapes) == 1  # the hfield
  # per env: the robot's parts only, in its cell
  assert all(np.all(s.body != 0) for s in view._parts.shapes)
  assert sum(s.num_parts for s in view._parts.shapes) == 2


def test_no_ground_grid_z_fights_a_heightfield(server):
  model = model_of(HFIELD.replace("<worldbody>", PLANE_FIRST))
  view = SceneView(server, model, np.zeros((4, 3)), layout="overlay")
  assert view._floor is None
  plane = SceneView(server, model_of(HUMANOID), np.zeros((4, 3)))
  assert plane._floor is not None  # a plain floor still gets its grid


def test_marker_and_done_dots_are_sized_to_the_robot(server):
  model = model_of(HFIELD)
  view = SceneView(server, model, np.zeros((16, 3)), layout="overlay")
  # the robot reaches ~0.3 m from its middle; the terrain 14 m
  assert 0.2 < view.extent < 0.5
  marker = view._markers.marker.radius
  assert 0.01 < marker < 0.05  # a few cm over a 40 cm robot, not 0.8 m


def test_follow_keeps_the_robot_large_on_a_20m_heightfield():
  model = model_of(HFIELD)
  viewer = WebViewerBatched(num_envs=16, port=0)
  try:
    viewer.init(model)
    assert viewer.layout == "overlay"
    page = viewer.page
    assert page is not None and page.view is not None
    assert page.panels.layout_note.visible  # the page says envs overlap
    assert "Overlay" in page.panels.layout_note.content
    page.select_env(3)
    page.apply_camera("follow")
    cam = viewer.host._web.server.initial_camera  # what a new page gets
    position, look_at = np.asarray(cam.position), np.asarray(cam.look_at)
    view = page.view
    root = view.roots[3] + view.offset
    # the robot's bounding sphere, seen from the follow camera
    box = grid.robot_extent(model)
    assert box is not None
    radius = float(np.linalg.norm(box[1] - box[0]) / 2)
    dist = np.linalg.norm(root - position)
    assert np.linalg.norm(look_at - root) < 1e-6
    fov = Viewport().fov
    covered = math.tan(math.asin(min(radius / dist, 1.0))) / math.tan(fov / 2)
    assert covered >= 0.15  # of the frame height; before: ~0.03
  finally:
    viewer.close()


def test_the_sites_toggle_hides_the_shared_worlds_sites_too(server):
  xml = BOX_TERRAIN.replace(
    '<geom name="step"',
    '<site name="flag" pos="2 2 0.5" size="0.1" rgba="0 0 1 1"/>'
    '<geom name="step"',
  )
  model = model_of(xml)
  scene = BatchedScene(model, 4)
  view = SceneView(server, model, scene.offsets, layout=scene.layout)
  world = view._world
  flags = [
    h for s, h in zip(world.shapes, world._handles) if s.category == "site"
  ]
  assert len(flags) == 1 and flags[0].visible  # drawn once, shown
  view.set_visible("site", False)
  assert not flags[0].visible
  view.set_visible("site", True)
  assert flags[0].visible
