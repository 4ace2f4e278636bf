"""Camera presets: every env whole in the part of the page the panel
leaves free, for the page's field of view and shape."""

from __future__ import annotations

import numpy as np
import pytest

from braxviewer.grid import grid_offsets
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
