"""The ground: a finite grid under the drawn envs that moves with them.

An infinite grid shades every pixel below the horizon, ~25 ms a frame in
software WebGL at 1280x800; a grid over the envs plus a margin shades far
fewer. It is re-fitted when an env walks near its edge (or the drawn envs
change), in whole sections, so its lines stay put in the world.
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import viser

CELL = 0.5  # metres between thin lines
SECTION = 2.0  # metres between thick lines; the grid's size is a multiple


def fit(
  roots_xy: np.ndarray, margin: float, section: float = SECTION
) -> Tuple[np.ndarray, np.ndarray]:
  """``(centre (2,), size (2,))`` of a grid covering the points with at least
  ``margin`` to spare, in even numbers of sections around a centre on a
  section line (so the grid's lines fall on world multiples of ``section``)."""
  pts = np.asarray(roots_xy, dtype=np.float64).reshape(-1, 2)
  lo, hi = pts.min(axis=0) - margin, pts.max(axis=0) + margin
  centre = np.round((lo + hi) / 2 / section) * section
  half = np.ceil(np.maximum(centre - lo, hi - centre) / section) * section
  return centre, 2 * np.maximum(half, section)


class Floor:
  """A grid at height ``z`` covering the envs' root bodies.

  Args:
    server: the viser server.
    name: scene path (under the envs' frame, so it follows its shifts).
    z: height of the ground plane.
    margin: ground to keep around every env (metres).
  """

  def __init__(
    self, server: viser.ViserServer, name: str, z: float, margin: float
  ):
    self._server = server
    self._name = name
    self._z = float(z)
    self.margin = float(margin)
    self.centre: Optional[np.ndarray] = None
    self.size: Optional[np.ndarray] = None
    self._handle = None

  def cover(self, roots: np.ndarray) -> bool:
    """Make the grid cover ``roots (N, 3)``; True when it was re-fitted.

    Re-fits when a root comes within half the margin of an edge, or when the
    grid is over four times the area needed (fewer envs drawn)."""
    xy = np.asarray(roots, dtype=np.float64).reshape(-1, 3)[:, :2]
    xy = xy[np.all(np.isfinite(xy), axis=1)]
    if not len(xy):
      return False
    centre, size = fit(xy, self.margin)
    if self.centre is not None and self.size is not None:  # set together
      lo = self.centre - self.size / 2 + self.margin / 2
      hi = self.centre + self.size / 2 - self.margin / 2
      inside = np.all(xy >= lo) and np.all(xy <= hi)
      if inside and np.prod(self.size) <= 4 * np.prod(size):
        return False
    self.centre, self.size = centre, size
    position = (float(centre[0]), float(centre[1]), self._z)
    if self._handle is None:
      self._handle = self._server.scene.add_grid(
        self._name,
        width=float(size[0]),
        height=float(size[1]),
        cell_size=CELL,
        section_size=SECTION,
        shadow_opacity=0.2,
        plane_opacity=0.4,
        fade_distance=1e4,
        position=position,
      )
    else:
      self._handle.width = float(size[0])
      self._handle.height = float(size[1])
      self._handle.position = position
    return True

  def remove(self) -> None:
    if self._handle is not None:
      self._handle.remove()
      self._handle = None
