"""Camera presets: where to put the camera for top, side, front and follow views.

The grid presets fit every env (a sphere of the env's size around its root)
into the part of the page the control panel leaves free, for the page's
field of view and shape; envs overlaid on one world are fitted where they
are. Follow frames the followed robot alone (a sphere of the robot's size),
a large part of the page high, whatever the world around it.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Tuple

import numpy as np

PRESETS = ("top", "side", "front", "follow")
_DIRECTIONS = {  # from the envs towards the camera
  "top": [0.0, -0.02, 1.0],  # a hair off vertical: straight down has no up
  "side": [0.0, -1.0, 0.35],
  "front": [1.0, 0.0, 0.35],
  "overview": [0.6, -0.75, 0.55],
}
_FILL = 0.8  # of the free part of the page, each way: envs move
_FOLLOW_FILL = 0.45  # of the page's height, the followed robot's diameter
_FOLLOW_BACK = (-0.7, -0.7, 0.5)  # from the followed robot to the camera


@dataclasses.dataclass(frozen=True)
class Viewport:
  """What the camera looks through: vertical field of view (radians), width
  over height, and the fraction of the width the control panel covers on
  the right."""

  fov: float = math.radians(75.0)  # viser's default
  aspect: float = 1.6
  panel: float = 0.25

  @classmethod
  def of(
    cls, fov: float, width: float, height: float, panel_px: float = 320.0
  ) -> "Viewport":
    """From a page's camera: values a page cannot have (NaN, a field of
    view of 0 or 180 degrees, a size below a pixel) give the defaults."""
    default = cls()
    fov = float(fov)
    if not (math.isfinite(fov) and 0.05 < fov < math.pi - 0.05):
      fov = default.fov
    width, height = float(width), float(height)
    if not (math.isfinite(width) and math.isfinite(height)):
      return cls(fov, default.aspect, default.panel)
    width, height = max(width, 1.0), max(height, 1.0)
    return cls(fov, width / height, min(panel_px / width, 0.45))


def _basis(back: np.ndarray, up: np.ndarray):
  right = np.cross(-back, up)
  right /= max(np.linalg.norm(right), 1e-9)
  return right, np.cross(right, -back)


def fit(
  roots: np.ndarray,
  radius: float,
  back: np.ndarray,
  viewport: Viewport = Viewport(),
) -> Tuple[np.ndarray, float]:
  """``(target, distance)`` for a camera at ``target + distance * back``
  (``back`` a unit vector) that shows every sphere of ``radius`` around
  ``roots (N, 3)`` inside the free part of the page, as large as fits."""
  roots = np.asarray(roots, dtype=np.float64).reshape(-1, 3)
  roots = roots[np.all(np.isfinite(roots), axis=1)]
  if not len(roots):
    roots = np.zeros((1, 3))
  right, cam_up = _basis(back, np.array([0.0, 0.0, 1.0]))
  centre = (roots.min(axis=0) + roots.max(axis=0)) / 2
  rel = roots - centre
  u, v, w = rel @ right, rel @ cam_up, rel @ back
  tan_y = math.tan(viewport.fov / 2)
  tan_x = viewport.aspect * tan_y
  mid, half_x = -viewport.panel, (1.0 - viewport.panel) * _FILL

  def place(dist: float):
    """Target offsets (right, up) centring the envs in the free part of
    the page from ``dist`` away, and their rims there (NDC), or None when
    an env is behind the camera."""
    depth = dist - w
    if np.any(depth <= 1.05 * radius):
      return None

    def rims(a: float, b: float):
      x = np.concatenate([u + radius - a, u - radius - a]) / np.tile(
        depth * tan_x, 2
      )
      y = np.concatenate([v + radius - b, v - radius - b]) / np.tile(
        depth * tan_y, 2
      )
      return x, y

    a, b = viewport.panel * dist * tan_x, 0.0
    for _ in range(4):  # near envs look larger: centre what is seen
      x, y = rims(a, b)
      a += ((x.max() + x.min()) / 2 - mid) * dist * tan_x
      b += (y.max() + y.min()) / 2 * dist * tan_y
    x, y = rims(a, b)
    return a, b, x, y

  def fits(dist: float) -> bool:
    placed = place(dist)
    if placed is None:
      return False
    _, _, x, y = placed
    return bool(
      np.all(np.abs(x - mid) <= half_x) and np.all(np.abs(y) <= _FILL)
    )

  lo, hi = 0.0, max(float(np.abs(w).max()) + 2 * radius, 1e-3)
  for _ in range(64):  # far enough, everything fits
    if fits(hi):
      break
    lo, hi = hi, 2 * hi
  for _ in range(40):
    mid_d = (lo + hi) / 2
    lo, hi = (lo, mid_d) if fits(mid_d) else (mid_d, hi)
  placed = place(hi)
  assert placed is not None  # hi fits, or is far beyond every env
  a, b, _, _ = placed
  return centre + a * right + b * cam_up, hi


def follow(
  root: np.ndarray, radius: float, viewport: Viewport = Viewport()
) -> Tuple[np.ndarray, np.ndarray]:
  """``(position, look_at)`` of a camera on ``root`` from which a sphere of
  ``radius`` around it is :data:`_FOLLOW_FILL` of the page's height."""
  target = np.asarray(root, dtype=np.float64)
  half = math.atan(_FOLLOW_FILL * math.tan(viewport.fov / 2))
  dist = radius / math.sin(half)
  back = np.asarray(_FOLLOW_BACK) / np.linalg.norm(_FOLLOW_BACK)
  return target + dist * back, target


def preset(
  name: str,
  roots: np.ndarray,
  selected: int,
  extent: float,
  viewport: Viewport = Viewport(),
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
  """``(position, look_at, up)`` for the preset ``name``.

  Args:
    name: one of :data:`PRESETS`, or ``"overview"`` (the initial view).
    roots: ``(N, 3)`` positions of every env's root body, as drawn.
    selected: the selected env (``follow`` looks at it).
    extent: radius of one env (for ``follow``: of its robot).
    viewport: the page's field of view and shape.
  """
  up = np.array([0.0, 0.0, 1.0])
  if name == "follow":
    return (*follow(roots[selected], extent, viewport), up)
  if name not in _DIRECTIONS:
    raise ValueError(f"Unknown camera preset {name!r}; use one of {PRESETS}.")
  back = np.asarray(_DIRECTIONS[name], dtype=np.float64)
  back /= np.linalg.norm(back)
  target, dist = fit(roots, extent, back, viewport)
  return target + dist * back, target, up
