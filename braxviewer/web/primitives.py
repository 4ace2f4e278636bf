"""A model's geoms and sites as instances of a few shared shapes, posed from
body poses.

The viser client's cost per frame grows with (instanced meshes)^2 x
instances: 13 ant bodies as 13 meshes of 16 instances drew ~6 frames/s in
software WebGL, the same instances in one mesh ~25. So every round or box
geom becomes an instance of one of three unit shapes (sphere, cylinder, box)
with a per-instance scale and colour, and capsules of one length/radius
ratio share a unit capsule (:mod:`detail` tessellates them). Mesh geoms
share one instanced mesh per mesh asset and colour, built by mjviser
(textures kept); height fields go through mjviser too. Sites (groups 0-2,
visible colour) are drawn like geoms, in shapes of their own so the page can
hide them. Planes other than the floor (walls, planes on bodies) are thin
boxes of the plane's size; a floor is left to the page's ground grid.
Textured primitives keep their texture (:mod:`textures`), one mesh each.
Colours follow MuJoCo's viewer: the object's rgba, or its material's when
the rgba is the default grey. Pure numpy + mujoco; :mod:`render` puts the
shapes in the scene.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional, Tuple

from mjviser.conversions import create_primitive_mesh, mujoco_mesh_to_trimesh
import mujoco
import numpy as np
import trimesh
import trimesh.visual
from viser.transforms import SO3

from braxviewer.scene.grid import is_floor
from braxviewer.scene.tendons import material_rgba
from braxviewer.web.textures import texture_of, textured_primitive

_G = mujoco.mjtGeom
VISIBLE_GROUPS = (0, 1, 2)  # MuJoCo's default visible geom and site groups
_PRIMITIVES = (
  int(_G.mjGEOM_SPHERE),
  int(_G.mjGEOM_ELLIPSOID),
  int(_G.mjGEOM_BOX),
  int(_G.mjGEOM_CYLINDER),
  int(_G.mjGEOM_CAPSULE),
)


def _colour(rgba: np.ndarray) -> Tuple[np.ndarray, float]:
  """``(rgb uint8, opacity)`` of an rgba in 0-1."""
  return np.round(rgba[:3] * 255).astype(np.uint8), float(rgba[3])


CATEGORIES = ("geom", "site", "tendon")  # what the page can show or hide


def geom_rgba(model: mujoco.MjModel, geom: int) -> np.ndarray:
  """A geom's flat colour as MuJoCo's viewer picks it (its rgba, or its
  material's when its rgba is the default grey)."""
  return material_rgba(
    model, int(model.geom_matid[geom]), model.geom_rgba[geom]
  )


def site_rgba(model: mujoco.MjModel, site: int) -> np.ndarray:
  """A site's flat colour, as :func:`geom_rgba`."""
  return material_rgba(
    model, int(model.site_matid[site]), model.site_rgba[site]
  )


def _textured(model: mujoco.MjModel, geom: int) -> bool:
  return texture_of(model, int(model.geom_matid[geom])) >= 0


def wall_thickness(size: np.ndarray) -> float:
  """Half-thickness of the box a plane of half-sizes ``size`` is drawn as."""
  return float(np.clip(0.005 * max(size[0], size[1]), 5e-4, 0.01))


@dataclasses.dataclass
class Shape:
  """All instances of one shape, one set per env.

  ``kind`` is ``"sphere"``, ``"cylinder"``, ``"box"``, ``"capsule:<k>"``
  (unit shapes, coloured per instance) or ``"mesh:..."``, ``"geom:<id>"``,
  ``"site:<id>"`` (``mesh`` is set, in metres, colours baked in).
  ``category`` tells geoms from sites. Arrays are per part (P per env).
  """

  kind: str
  body: np.ndarray  # (P,) body of each part
  pos: np.ndarray  # (P, 3) part origin in its body's frame
  quat: np.ndarray  # (P, 4) part orientation in its body's frame (wxyz)
  scale: np.ndarray  # (P, 3)
  rgb: np.ndarray  # (P, 3) uint8
  opacity: np.ndarray  # (P,)
  mesh: Optional[trimesh.Trimesh] = None
  category: str = "geom"  # "geom" or "site" (see CATEGORIES)
  ids: Optional[np.ndarray] = None  # (P,) geom or site id of each part

  @property
  def num_parts(self) -> int:
    return len(self.body)

  @property
  def radius(self) -> np.ndarray:
    """(P,) radius of each part's round section, in metres (0 when the
    shape is drawn exactly whatever its size: boxes, meshes)."""
    if self.mesh is not None or self.kind == "box":
      return np.zeros(self.num_parts)
    if self.kind == "cylinder":
      return self.scale[:, :2].max(axis=1)
    return self.scale.max(axis=1)  # spheres, ellipsoids, capsules


class Parts:
  """The drawable parts of a model, grouped by shape.

  Args:
    model: the single-env model.
    skip_floors: leave floors out (:func:`braxviewer.scene.grid.is_floor`; the
      renderer draws a grid). Other planes are drawn as thin boxes.
    plane_bound: half-size of a plane along a direction where it is
      infinite (size 0), in metres; None: the model's ``stat.extent``
      (0.1 to 10 m).
  """

  def __init__(
    self,
    model: mujoco.MjModel,
    skip_floors: bool = True,
    plane_bound: Optional[float] = None,
  ):
    self.model = model
    self._plane_bound = (
      float(np.clip(model.stat.extent, 0.1, 10.0))
      if plane_bound is None
      else float(plane_bound)
    )
    self._rows: Dict[Tuple[str, str], List[tuple]] = {}
    self._meshes: Dict[str, trimesh.Trimesh] = {}
    for g in range(model.ngeom):
      rgba = geom_rgba(model, g)
      if int(model.geom_group[g]) not in VISIBLE_GROUPS or rgba[3] <= 0:
        continue
      if skip_floors and is_floor(model, g):
        continue
      self._add_geom(g, rgba)
    for site in range(model.nsite):
      rgba = site_rgba(model, site)
      if int(model.site_group[site]) not in VISIBLE_GROUPS or rgba[3] <= 0:
        continue
      self._add_primitive(
        "site",
        site,
        int(model.site_type[site]),
        int(model.site_bodyid[site]),
        np.asarray(model.site_pos[site], dtype=np.float64),
        np.asarray(model.site_quat[site], dtype=np.float64),
        np.asarray(model.site_size[site], dtype=np.float64),
        int(model.site_matid[site]),
        rgba,
      )
    self.shapes: List[Shape] = []
    for (category, kind), parts in self._rows.items():
      ids, body, pos, quat, scale, rgb, alpha = zip(*parts)
      self.shapes.append(
        Shape(
          kind=kind,
          body=np.asarray(body, dtype=np.int64),
          pos=np.asarray(pos),
          quat=np.asarray(quat),
          scale=np.asarray(scale),
          rgb=np.asarray(rgb, dtype=np.uint8),
          opacity=np.asarray(alpha, dtype=np.float64),
          mesh=self._meshes.get(kind),
          category=category,
          ids=np.asarray(ids, dtype=np.int64),
        )
      )

  def _row(self, category: str, kind: str, *row) -> None:
    self._rows.setdefault((category, kind), []).append(row)

  def _add_geom(self, g: int, rgba: np.ndarray) -> None:
    model = self.model
    gtype = int(model.geom_type[g])
    body = int(model.geom_bodyid[g])
    pos = np.asarray(model.geom_pos[g], dtype=np.float64)
    quat = np.asarray(model.geom_quat[g], dtype=np.float64)
    size = np.asarray(model.geom_size[g], dtype=np.float64)
    if gtype in _PRIMITIVES or gtype == _G.mjGEOM_PLANE:
      self._add_primitive(
        "geom", g, gtype, body, pos, quat, size, int(model.geom_matid[g]), rgba
      )
      return
    colour = _colour(rgba)
    if gtype == _G.mjGEOM_MESH:  # one mesh per asset, material and colour
      textured = _textured(model, g)
      key = f"mesh:{int(model.geom_dataid[g])}:{int(model.geom_matid[g])}"
      key += "" if textured else ":" + ",".join(str(int(c)) for c in colour[0])
      if key not in self._meshes:
        mesh = mujoco_mesh_to_trimesh(model, g)
        if not textured:  # MuJoCo's colour (mjviser prefers the material's)
          rgba8 = np.round(rgba * 255).astype(np.uint8)
          mesh.visual = trimesh.visual.ColorVisuals(
            mesh, vertex_colors=np.tile(rgba8, (len(mesh.vertices), 1))
          )
        self._meshes[key] = mesh
    else:  # height fields (and whatever else mjviser builds)
      key = f"geom:{g}"
      self._meshes[key] = create_primitive_mesh(model, g)
    self._row("geom", key, g, body, pos, quat, np.ones(3), *colour)

  def _add_primitive(
    self,
    category: str,
    obj: int,
    gtype: int,
    body: int,
    pos: np.ndarray,
    quat: np.ndarray,
    size: np.ndarray,
    matid: int,
    rgba: np.ndarray,
  ) -> None:
    """A sphere, ellipsoid, box, cylinder, capsule or plane of a geom or
    site: an instance of a unit shape, or its own textured mesh."""
    if gtype not in _PRIMITIVES and gtype != _G.mjGEOM_PLANE:
      return  # e.g. mesh sites: not drawn
    if gtype == _G.mjGEOM_PLANE:  # a thin box centred on the plane
      half = np.where(size[:2] > 0, size[:2], self._plane_bound)
      size = np.array([half[0], half[1], wall_thickness(half)])
      gtype = int(_G.mjGEOM_BOX)
    mesh = textured_primitive(self.model, gtype, size, matid, rgba)
    colour = _colour(rgba)
    if mesh is not None:
      key = f"{category}:{obj}"
      self._meshes[key] = mesh
      self._row(category, key, obj, body, pos, quat, np.ones(3), *colour)
      return
    if gtype == _G.mjGEOM_SPHERE:
      kind, scale = "sphere", size[[0, 0, 0]]
    elif gtype == _G.mjGEOM_ELLIPSOID:
      kind, scale = "sphere", size[:3]
    elif gtype == _G.mjGEOM_BOX:
      kind, scale = "box", size[:3]
    elif gtype == _G.mjGEOM_CYLINDER:
      kind, scale = "cylinder", size[[0, 0, 1]]
    else:  # capsules of one length/radius ratio share a unit capsule
      r, half = size[0], size[1]
      kind, scale = f"capsule:{half / max(r, 1e-9):.2f}", size[[0, 0, 0]]
    self._row(category, kind, obj, body, pos, quat, scale, *colour)

  def poses(
    self, shape: Shape, xpos: np.ndarray, xquat: np.ndarray
  ) -> Tuple[np.ndarray, np.ndarray]:
    """World ``(pos (E*P, 3), quat (E*P, 4))`` of a shape's parts for body
    poses ``xpos (E, nbody, 3)``, ``xquat (E, nbody, 4)``; env-major."""
    bpos = xpos[:, shape.body]  # (E, P, 3)
    bquat = xquat[:, shape.body]  # (E, P, 4)
    rot = SO3(bquat)
    pos = bpos + rot.apply(shape.pos[None])
    quat = rot.multiply(SO3(np.broadcast_to(shape.quat, bquat.shape))).wxyz
    return pos.reshape(-1, 3), quat.reshape(-1, 4)
