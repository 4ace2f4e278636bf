"""Camera presets: every env whole in the part of the page the panel
leaves free, for the page's field of view and shape."""

from __future__ import annotations

import numpy as np
import pytest

from braxviewer.scene.grid import grid_offsets
from braxviewer.web.camera import Viewport, preset


@pytest.mark.parametrize("num_envs", [1, 4, 16, 64])
def test_grid_presets_show_every_env_whole_beside_the_panel(num_envs):
  width, height, panel_px = 1280, 800, 320
  page = Viewport.of(np.radians(75), width, height, panel_px)
  extent = 1.1
  roots = grid_offsets(num_envs, env_offset=(3.0, 3.0, 0.0)) + [0, 0, 0.6]
  for name in ("top", "side", "front", "overview"):
    position, look_at, up = preset(name, roots, 0, extent, page)
    forward = (look_at - position) / np.linalg.norm(look_at - position)
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    cam_up = np.cross(right, forward)
    tan_y = np.tan(np.radians(75) / 2)
    tan_x = tan_y * width / height
    xs, ys = [], []
    for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):  # each env's rim
      p = roots + extent * (dx * right + dy * cam_up) - position
      depth = p @ forward
      assert np.all(depth > 0)
      xs.append(width / 2 * (1 + (p @ right) / (depth * tan_x)))
      ys.append(height / 2 * (1 - (p @ cam_up) / (depth * tan_y)))
    xs, ys = np.concatenate(xs), np.concatenate(ys)
    assert xs.min() >= 0 and xs.max() <= width - panel_px, name
    assert ys.min() >= 0 and ys.max() <= height, name
    # ... and as large as fits: the envs fill most of the free part one way
    fill = max(
      (xs.max() - xs.min()) / (width - panel_px), (ys.max() - ys.min()) / height
    )
    assert fill > 0.7, (name, fill)


def project(points, position, look_at, fov, width, height):
  """Pixel coordinates of ``points`` seen from a camera (z up)."""
  forward = (look_at - position) / np.linalg.norm(look_at - position)
  right = np.cross(forward, [0.0, 0.0, 1.0])
  right /= np.linalg.norm(right)
  cam_up = np.cross(right, forward)
  rel = np.asarray(points) - position
  depth = rel @ forward
  tan_y = np.tan(fov / 2)
  x = width / 2 * (1 + (rel @ right) / (depth * tan_y * width / height))
  y = height / 2 * (1 - (rel @ cam_up) / (depth * tan_y))
  return x, y, depth


@pytest.mark.parametrize("fov_deg", [30, 50, 75, 100])
def test_follow_frames_the_robot_large_whatever_the_field_of_view(fov_deg):
  fov, robot = np.radians(fov_deg), 0.3  # a 60 cm robot
  page = Viewport.of(fov, 1280, 800)
  roots = np.array([[8.0, -5.0, 0.4], [0.0, 0.0, 0.4]])  # on a big terrain
  position, look_at, _ = preset("follow", roots, 0, robot, page)
  np.testing.assert_allclose(look_at, roots[0])
  # the robot's bounding sphere, projected: its silhouette's height
  dist = np.linalg.norm(roots[0] - position)
  half = np.arcsin(robot / dist)
  share = np.tan(half) / np.tan(fov / 2)  # of the frame's height
  assert 0.3 < share < 0.6, share
  _, ys, depth = project(roots[:1], position, look_at, fov, 1280, 800)
  assert depth[0] > robot and abs(ys[0] - 400) < 1


def test_overlaid_envs_are_fitted_where_they_are():
  rng = np.random.default_rng(2)
  roots = np.c_[rng.uniform(-8, 8, (16, 2)), np.full(16, 0.4)]
  robot = 0.3
  page = Viewport.of(np.radians(75), 1280, 800, 320)
  for name in ("top", "side", "front", "overview"):
    position, look_at, _ = preset(name, roots, 0, robot, page)
    xs, ys, depth = project(roots, position, look_at, page.fov, 1280, 800)
    assert np.all(depth > 0)
    assert xs.min() >= 0 and xs.max() <= 1280 - 320, name
    assert ys.min() >= 0 and ys.max() <= 800, name
    # fitted to the robots, not to a 20 m world: they span the free part
    spread = max((xs.max() - xs.min()) / 960, (ys.max() - ys.min()) / 800)
    assert spread > 0.5, (name, spread)
