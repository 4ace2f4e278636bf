"""Level of detail and the ground: what the page is asked to draw.

No browser: a real viser server with stand-in cameras (a page reports its
camera to the server; here the test sets it).
"""

from __future__ import annotations

import os
import time
import types

import brax
import mujoco
import numpy as np
import pytest
import viser

from braxviewer.scene.batched import BatchedScene
from braxviewer.web import detail
from braxviewer.web.floor import SECTION, Floor, fit
from braxviewer.web.render import SceneView

ANT = os.path.join(os.path.dirname(brax.__file__), "envs/assets/ant.xml")


def segment_distance(points, half):
  z = np.clip(points[:, 2], -half, half)
  return np.linalg.norm(points - np.stack([0 * z, 0 * z, z], 1), axis=1)


@pytest.mark.parametrize(
  "kind", ["capsule:0.50", "capsule:3.00", "sphere", "cylinder"]
)
def test_every_level_is_a_closed_outward_mesh_within_its_stated_error(kind):
  levels = detail.levels(kind)
  assert [lvl.deviation for lvl in levels] == sorted(
    (lvl.deviation for lvl in levels), reverse=True
  )  # coarsest first
  assert [lvl.triangles for lvl in levels] == sorted(
    lvl.triangles for lvl in levels
  )
  for level in levels:
    mesh = level.mesh
    assert mesh.is_watertight and mesh.volume > 0  # closed, faces outward
    if kind == "cylinder":
      continue  # trimesh's; its sides are checked by the capsule's maths
    half = float(kind.split(":")[1]) if ":" in kind else 0.0
    # corners on the true surface; no point of a face deeper than stated
    assert np.allclose(segment_distance(mesh.vertices, half), 1.0, atol=1e-9)
    inner = segment_distance(mesh.triangles_center, half)
    assert 1.0 - inner.min() <= level.deviation + 1e-9


def test_near_parts_get_fine_meshes_far_ones_coarse_and_no_page_none():
  deviations = [lvl.deviation for lvl in detail.levels("capsule:2.00")]
  view = detail.View(np.zeros(3), fov=np.radians(60), height_px=800)
  points = np.array([[0.5, 0, 0], [3, 0, 0], [30, 0, 0], [np.nan, 0, 0]])
  radii = np.full(4, 0.08)
  levels = detail.choose(radii, points, [view], deviations)
  assert levels[0] == len(deviations) - 1  # a leg filling the page: finest
  assert levels[0] > levels[1] > levels[2] == 0  # far away: coarsest
  assert levels[3] == 0  # a broken frame costs nothing
  # the error on the page stays under the tolerance wherever it can
  px = radii * detail.pixels_per_metre(points, [view])
  chosen = np.asarray(deviations)[levels[:3]] * px[:3]
  assert np.all(chosen[1:] <= detail.TOLERANCE_PX)
  # the page that sees a part largest decides; no page: all coarsest
  near = detail.View(np.array([30.5, 0, 0]), np.radians(60), 800)
  assert detail.choose(radii, points, [view, near], deviations)[2] > 0
  assert np.all(detail.choose(radii, points, [], deviations) == 0)


def test_floor_fits_whole_sections_around_the_envs_with_margin():
  roots = np.array([[0.3, -1.1], [5.2, 2.9], [-3.7, 0.4]])
  centre, size = fit(roots, margin=1.5)
  lo, hi = centre - size / 2, centre + size / 2
  assert np.all(roots.min(0) - 1.5 >= lo) and np.all(roots.max(0) + 1.5 <= hi)
  # lines on world multiples of a section: centre on one, whole sections
  assert np.allclose(centre / SECTION, np.round(centre / SECTION))
  assert np.allclose(size / (2 * SECTION), np.round(size / (2 * SECTION)))
  # ... and not much more: centring on a line and rounding up cost at most
  # three sections
  assert np.all(size <= (roots.max(0) - roots.min(0)) + 3.0 + 3 * SECTION)


def test_floor_follows_an_env_walking_away_and_shrinks_to_one_env():
  server = viser.ViserServer(port=0, verbose=False)
  try:
    floor = Floor(server, "/floor", z=0.0, margin=2.0)
    grid = np.array([[x, y, 0.5] for x in range(4) for y in range(4)], float)
    assert floor.cover(grid * 3)
    first = floor.size.copy()
    assert not floor.cover(grid * 3 + [0.3, 0.2, 0])  # small steps: kept
    walker = grid * 3
    for _ in range(40):  # one ant walks off to +x
      walker[5, 0] += 0.5
      floor.cover(walker)
      lo = floor.centre - floor.size / 2
      hi = floor.centre + floor.size / 2
      assert np.all(walker[:, :2] >= lo) and np.all(walker[:, :2] <= hi)
    assert floor.size[0] > first[0]
    assert floor.cover(walker[5:6])  # only one env drawn: a small floor
    assert np.prod(floor.size) < np.prod(first)
  finally:
    server.stop()


def fake_page(position, fov=None, height=800):
  fov = np.radians(75) if fov is None else fov
  camera = types.SimpleNamespace(
    position=np.asarray(position, float), fov=fov, image_height=height
  )
  return types.SimpleNamespace(camera=camera)


def test_scene_draws_a_grid_coarsely_and_the_followed_env_finely():
  model = mujoco.MjModel.from_xml_path(ANT)
  scene = BatchedScene(model, 16)
  qpos = np.tile(model.qpos0, (16, 1))
  qpos[:, :3] += scene.offsets
  poses = scene.poses_from_qpos(qpos)
  server = viser.ViserServer(port=0, verbose=False)
  try:
    view = SceneView(server, model, scene.offsets)
    pages = []
    server.get_clients = lambda: {i: p for i, p in enumerate(pages)}

    def drawn():
      """Instances and triangles the page draws."""
      return sum(len(lvl) for lvl in view._meshes.levels), view.triangles

    centre = view.roots.mean(axis=0)
    pages.append(fake_page(centre + [0.0, -14.0, 9.0]))  # the overview
    view.show_only(None)
    view.show(poses.xpos, poses.xquat)
    parts = sum(s.num_parts for s in view._parts.shapes)
    count, overview_tris = drawn()
    assert count == 16 * parts  # every part of every env, once
    finest = (
      sum(
        s.num_parts * detail.levels(s.kind)[-1].triangles
        for s in view._parts.shapes
      )
      * 16
    )
    assert overview_tris < finest / 10
    for handles, levels in zip(view._meshes.handles, view._meshes.levels):
      for level, handle in enumerate(handles):  # empty meshes are hidden
        assert handle.visible == bool(np.any(levels == level))
        if handle.visible:
          assert len(handle.batched_positions) == np.sum(levels == level)
    # the camera comes down to env 5: its parts get finer meshes
    pages[0] = fake_page(view.roots[5] + [0.0, -1.2, 0.8])
    time.sleep(0.3)  # levels are chosen a few times a second
    view.show(poses.xpos, poses.xquat)
    sphere = [
      i for i, s in enumerate(view._parts.shapes) if s.kind == "sphere"
    ][0]
    per_env = view._meshes.levels[sphere].reshape(
      16, -1
    )  # torso, then the feet
    others = per_env[np.arange(16) != 5]
    assert per_env[5, 0] > others[:, 0].max()
    assert per_env[5].sum() > others.sum(axis=1).max()
    assert drawn()[0] == 16 * parts
  finally:
    server.stop()
