"""What the page draws for one env, as a list: the geoms and sites of
:class:`~braxviewer.web.primitives.Parts` and the tendon segments of
:class:`~braxviewer.scene.tendons.TendonPaths`, posed from body poses.

The same shapes and poses the page sends, in terms of MuJoCo's viewer
(``mjv_updateScene``'s geoms): what a test compares with MuJoCo, and what a
user can print to see what is drawn. Floors are left out (the page's ground
grid stands for them). No server; numpy + mujoco.
"""

from __future__ import annotations

import dataclasses
from typing import List, Optional

import mujoco
import numpy as np

from braxviewer.scene.tendons import TendonPaths
from braxviewer.web.primitives import Parts

_CAPSULE = int(mujoco.mjtGeom.mjGEOM_CAPSULE)


@dataclasses.dataclass(frozen=True)
class Item:
  """One drawn object.

  Attributes:
    category: ``"geom"``, ``"site"`` or ``"tendon"``.
    type: its MuJoCo shape (``mjtGeom``; tendon segments are capsules).
    id: the geom, site or tendon id.
    pos: ``(3,)`` world position of its centre.
    size: ``(3,)`` MuJoCo's size: the geom's or site's; a tendon segment's
      ``(radius, radius, half-length)`` as ``mjvGeom.size``.
  """

  category: str
  type: int
  id: int
  pos: np.ndarray
  size: np.ndarray


def drawn_items(
  model: mujoco.MjModel,
  xpos: np.ndarray,
  xquat: np.ndarray,
  *,
  parts: Optional[Parts] = None,
  tendons: Optional[TendonPaths] = None,
  categories=("geom", "site", "tendon"),
) -> List[Item]:
  """The objects the page draws for one env at body poses ``xpos (nbody,
  3)``, ``xquat (nbody, 4)`` (wxyz), in the order of its shapes.

  Args:
    model: the single-env model.
    xpos, xquat: the env's body poses in the world (grid offset included).
    parts, tendons: the page's (built from ``model`` when not given).
    categories: the categories shown.
  """
  parts = Parts(model) if parts is None else parts
  xpos = np.asarray(xpos, dtype=np.float64)[None]
  xquat = np.asarray(xquat, dtype=np.float64)[None]
  items: List[Item] = []
  for shape in parts.shapes:
    if shape.category not in categories or shape.ids is None:
      continue
    pos, _ = parts.poses(shape, xpos, xquat)
    site = shape.category == "site"
    types = model.site_type if site else model.geom_type
    sizes = model.site_size if site else model.geom_size
    for obj, p in zip(shape.ids, pos):
      items.append(
        Item(
          shape.category,
          int(types[obj]),
          int(obj),
          p,
          np.asarray(sizes[obj], dtype=np.float64),
        )
      )
  if "tendon" in categories:
    tendons = TendonPaths(model) if tendons is None else tendons
    if tendons:
      seg = tendons.segments(xpos, xquat)
      centre, half = seg.centre[0], seg.half_length[0]
      for slot in np.flatnonzero(seg.radius[0] > 0):
        r = float(seg.radius[0, slot])
        items.append(
          Item(
            "tendon",
            _CAPSULE,
            int(tendons.slot_tendon[slot]),
            centre[slot],
            np.array([r, r, float(half[slot])]),
          )
        )
  return items
