"""How finely each part is drawn: tessellation levels of the unit shapes, and
a level per instance from how large it appears on the open pages.

In software WebGL (SwiftShader: headless Chromium, GPU-less remote desktops)
triangles are most of a frame: ~2-3 us each on one shared core, so 16 ants
drawn with round capsules (~33k triangles) ran at 4-8 frames/s. A part far
from every camera needs far fewer triangles to look the same: each instance
gets the coarsest level whose silhouette error, projected on the page, stays
under :data:`TOLERANCE_PX` (the level's largest gap between mesh and true
surface, relative to the radius, times the part's radius in pixels). Parts
near a camera (follow, zoom in) get fine meshes; a grid seen whole gets
coarse ones. Pure numpy + trimesh: the scene and the cameras come in as
arrays.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Iterable, List, Sequence, Tuple

import numpy as np
import trimesh

TOLERANCE_PX = 1.5  # largest silhouette error allowed, in page pixels


@dataclasses.dataclass(frozen=True)
class Level:
  """One tessellation of a unit shape.

  ``deviation``: the largest distance between the mesh and the true surface,
  as a fraction of the shape's radius (0 for exact shapes such as boxes).
  """

  mesh: trimesh.Trimesh
  deviation: float

  @property
  def triangles(self) -> int:
    return len(self.mesh.faces)


@dataclasses.dataclass(frozen=True)
class View:
  """A page's camera: world position, vertical field of view (radians) and
  canvas height (pixels)."""

  position: np.ndarray
  fov: float
  height_px: float


def capsule(half_length: float, around: int, rows: int) -> trimesh.Trimesh:
  """Unit-radius capsule along z, its segment from -half_length to
  +half_length: ``around`` sides, ``rows`` rings per hemisphere."""
  phis = np.arange(rows) * (0.5 * np.pi / rows)  # equator first, pole left out
  angles = np.arange(around) * (2 * np.pi / around)
  ring = np.stack([np.cos(angles), np.sin(angles)], axis=1)
  rings = []  # bottom pole side first, then up
  for z_sign, order in ((-1.0, phis[::-1]), (1.0, phis)):
    for phi in order:
      xy = ring * np.cos(phi)
      z = np.full((around, 1), z_sign * (half_length + np.sin(phi)))
      rings.append(np.hstack([xy, z]))
  verts = np.vstack(
    rings + [[[0, 0, -half_length - 1.0]], [[0, 0, half_length + 1.0]]]
  )
  bottom, top = len(verts) - 2, len(verts) - 1
  faces = []
  j = np.arange(around)
  k = (j + 1) % around
  for r in range(len(rings) - 1):
    a, b = r * around + j, (r + 1) * around + j
    c, d = r * around + k, (r + 1) * around + k
    faces += [np.stack([a, c, b], 1), np.stack([c, d, b], 1)]
  last = (len(rings) - 1) * around
  faces += [
    np.stack([np.full(around, bottom), k, j], 1),
    np.stack([np.full(around, top), last + j, last + k], 1),
  ]
  return trimesh.Trimesh(verts, np.vstack(faces), process=False)


def _round_deviation(around: int, rows: int) -> float:
  # Inscribed facets: the gap is largest at a facet's centre, half a step
  # from its corners both around and along the arc.
  return 1.0 - math.cos(math.pi / around) * math.cos(0.25 * math.pi / rows)


def _sphere_deviation(mesh: trimesh.Trimesh) -> float:
  return float(
    1.0
    - np.abs(
      np.einsum("ij,ij->i", mesh.face_normals, mesh.triangles[:, 0])
    ).min()
  )


@functools.lru_cache(maxsize=None)
def levels(kind: str) -> Tuple[Level, ...]:
  """The tessellations of a unit shape kind, coarsest first.

  Kinds: ``sphere`` (radius 1), ``cylinder`` (radius 1, z from -1 to 1),
  ``box`` (-1 to 1) and ``capsule:<k>`` (radius 1, half-length k): MuJoCo's
  sizes are the scales.
  """
  if kind == "sphere":
    meshes = [trimesh.creation.icosphere(subdivisions=s) for s in (0, 1, 2, 3)]
    return tuple(Level(m, _sphere_deviation(m)) for m in meshes)
  if kind == "cylinder":
    return tuple(
      Level(
        trimesh.creation.cylinder(radius=1.0, height=2.0, sections=n),
        1.0 - math.cos(math.pi / n),
      )
      for n in (8, 16, 32)
    )
  if kind.startswith("capsule:"):
    half = float(kind.split(":", 1)[1])
    return tuple(
      Level(capsule(half, n, r), _round_deviation(n, r))
      for n, r in ((6, 1), (8, 2), (12, 3), (20, 5))
    )
  if kind == "box":
    return (Level(trimesh.creation.box(extents=(2.0, 2.0, 2.0)), 0.0),)
  raise ValueError(f"No unit shape {kind!r}.")


def pixels_per_metre(points: np.ndarray, views: Iterable[View]) -> np.ndarray:
  """For each point ``(M, 3)``: how many page pixels one metre there spans,
  on the page where it looks largest (0 with no page open)."""
  points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
  best = np.zeros(len(points))
  for view in views:
    dist = np.linalg.norm(points - np.asarray(view.position)[None], axis=1)
    focal = 0.5 * view.height_px / math.tan(0.5 * view.fov)
    best = np.maximum(best, focal / np.maximum(dist, 1e-6))
  return best


def choose(
  radii: np.ndarray,
  points: np.ndarray,
  views: Sequence[View],
  deviations: Sequence[float],
  tolerance_px: float = TOLERANCE_PX,
) -> np.ndarray:
  """Level index (into ``deviations``, coarsest first) for each instance of
  world radius ``radii (M,)`` at ``points (M, 3)``: the coarsest whose error
  on every page stays under ``tolerance_px``, else the finest."""
  radius_px = np.nan_to_num(
    np.asarray(radii, dtype=np.float64) * pixels_per_metre(points, views),
    nan=0.0,
    posinf=0.0,
  )
  error_px = radius_px[:, None] * np.asarray(deviations, dtype=np.float64)[None]
  ok = error_px <= tolerance_px
  return np.where(ok.any(axis=1), ok.argmax(axis=1), len(deviations) - 1)


def views_of(clients: Iterable) -> List[View]:
  """The cameras of viser clients that have reported theirs."""
  views = []
  for client in clients:
    camera = client.camera
    try:
      views.append(
        View(
          np.array(camera.position, dtype=np.float64),
          float(camera.fov),
          float(camera.image_height),
        )
      )
    except (AssertionError, AttributeError):  # not synced yet
      continue
  return views
