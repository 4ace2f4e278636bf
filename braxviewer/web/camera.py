"""Camera presets: where to put the camera for top, side, front and follow views."""

from __future__ import annotations

from typing import Tuple

import numpy as np

PRESETS = ("top", "side", "front", "follow")
_PANEL_SHIFT = 0.18
Vec = Tuple[float, float, float]


def framing(roots: np.ndarray, extent: float) -> Tuple[np.ndarray, float]:
  """Center of the envs and a camera distance that keeps them all in view."""
  roots = np.asarray(roots, dtype=np.float64).reshape(-1, 3)
  lo, hi = roots.min(axis=0), roots.max(axis=0)
  center = (lo + hi) / 2
  span = float(np.linalg.norm((hi - lo)[:2]))
  return center, 0.75 * span + 3.0 * extent


def preset(name: str, roots: np.ndarray, selected: int,
           extent: float) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
  """``(position, look_at, up)`` for the preset ``name``.

  Args:
    name: one of :data:`PRESETS`, or ``"overview"`` (the initial view).
    roots: ``(N, 3)`` positions of every env's root body, as drawn.
    selected: the selected env (``follow`` looks at it).
    extent: size of one env (``model.stat.extent``).
  """
  up = np.array([0.0, 0.0, 1.0])
  if name == "follow":
    target = np.asarray(roots[selected], dtype=np.float64)
    dist = 3.0 * extent
    back = np.array([-0.7, -0.7, 0.5])
    return target + dist * back / np.linalg.norm(back), target, up
  center, dist = framing(roots, extent)
  directions = {
      "top": [0.0, -0.02, 1.0],  # a hair off vertical: straight down has no up
      "side": [0.0, -1.0, 0.35],
      "front": [1.0, 0.0, 0.35],
      "overview": [0.6, -0.75, 0.55],
  }
  if name not in directions:
    raise ValueError(f"Unknown camera preset {name!r}; use one of {PRESETS}.")
  back = np.asarray(directions[name]) / np.linalg.norm(directions[name])
  right = np.cross(-back, up)
  right /= max(np.linalg.norm(right), 1e-9)
  # Aim a little right of the envs: the control panel covers the right side.
  target = center + _PANEL_SHIFT * dist * right
  return target + dist * back, target, up
