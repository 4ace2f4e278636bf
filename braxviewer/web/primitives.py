"""A model's geoms as instances of a few shared shapes, posed from body poses.

The viser client's cost per frame grows with (instanced meshes)^2 x
instances: 13 ant bodies as 13 meshes of 16 instances drew ~6 frames/s in
software WebGL, the same instances in one mesh ~25. So every round or box
geom becomes an instance of one of three unit shapes (sphere, cylinder, box)
with a per-instance scale and colour, and capsules of one length/radius
ratio share a unit capsule (:mod:`detail` tessellates them). Mesh geoms
share one instanced mesh per mesh asset and colour, built by mjviser
(textures kept); height fields go through mjviser too.
Pure numpy + mujoco; :mod:`render` puts the shapes in the scene.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional, Tuple

from mjviser.conversions import create_primitive_mesh, mujoco_mesh_to_trimesh
import mujoco
import numpy as np
import trimesh
from viser.transforms import SO3

_G = mujoco.mjtGeom
VISIBLE_GROUPS = (0, 1, 2)  # MuJoCo's default visible geom groups


def geom_rgba(model: mujoco.MjModel, geom: int) -> np.ndarray:
  """A geom's flat colour as mjviser picks it (material, else geom)."""
  matid = model.geom_matid[geom]
  rgba = (
    model.mat_rgba[matid] if 0 <= matid < model.nmat else model.geom_rgba[geom]
  )
  return np.clip(np.asarray(rgba, dtype=np.float64), 0.0, 1.0)


def _textured(model: mujoco.MjModel, geom: int) -> bool:
  matid = model.geom_matid[geom]
  return bool(0 <= matid < model.nmat and model.mat_texid[matid].max() >= 0)


@dataclasses.dataclass
class Shape:
  """All instances of one shape, one set per env.

  ``kind`` is ``"sphere"``, ``"cylinder"``, ``"box"`` (unit shapes, coloured
  per instance) or ``"mesh:<geom>"`` (``mesh`` is set, colours baked in).
  Arrays are per part (P parts per env).
  """

  kind: str
  body: np.ndarray  # (P,) body of each part
  pos: np.ndarray  # (P, 3) part origin in its body's frame
  quat: np.ndarray  # (P, 4) part orientation in its body's frame (wxyz)
  scale: np.ndarray  # (P, 3)
  rgb: np.ndarray  # (P, 3) uint8
  opacity: np.ndarray  # (P,)
  mesh: Optional[trimesh.Trimesh] = None

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
    skip_planes: leave ground planes out (the renderer draws a grid).
  """

  def __init__(self, model: mujoco.MjModel, skip_planes: bool = True):
    self.model = model
    rows: Dict[str, List[tuple]] = {}
    meshes: Dict[str, trimesh.Trimesh] = {}
    for g in range(model.ngeom):
      gtype = int(model.geom_type[g])
      rgba = geom_rgba(model, g)
      if (
        int(model.geom_group[g]) not in VISIBLE_GROUPS
        or rgba[3] <= 0
        or (skip_planes and gtype == _G.mjGEOM_PLANE)
      ):
        continue
      body = int(model.geom_bodyid[g])
      pos = np.asarray(model.geom_pos[g], dtype=np.float64)
      quat = np.asarray(model.geom_quat[g], dtype=np.float64)
      size = np.asarray(model.geom_size[g], dtype=np.float64)
      colour = (np.round(rgba[:3] * 255).astype(np.uint8), float(rgba[3]))
      if gtype == _G.mjGEOM_SPHERE:
        rows.setdefault("sphere", []).append(
          (body, pos, quat, size[[0, 0, 0]], *colour)
        )
      elif gtype == _G.mjGEOM_ELLIPSOID:
        rows.setdefault("sphere", []).append(
          (body, pos, quat, size[:3], *colour)
        )
      elif gtype == _G.mjGEOM_BOX:
        rows.setdefault("box", []).append((body, pos, quat, size[:3], *colour))
      elif gtype == _G.mjGEOM_CYLINDER:
        rows.setdefault("cylinder", []).append(
          (body, pos, quat, size[[0, 0, 1]], *colour)
        )
      elif gtype == _G.mjGEOM_CAPSULE:
        r, half = size[0], size[1]
        kind = f"capsule:{half / max(r, 1e-9):.2f}"
        rows.setdefault(kind, []).append(
          (body, pos, quat, np.array([r, r, r]), *colour)
        )
      else:  # meshes, height fields, planes kept: mjviser builds them
        if gtype == _G.mjGEOM_MESH:
          key = f"mesh:{int(model.geom_dataid[g])}:{int(model.geom_matid[g])}"
          key += (
            ""
            if _textured(model, g)
            else ":" + ",".join(str(int(c)) for c in colour[0])
          )
          if key not in meshes:
            meshes[key] = mujoco_mesh_to_trimesh(model, g)
        else:
          key = f"geom:{g}"
          meshes[key] = create_primitive_mesh(model, g)
        rows.setdefault(key, []).append((body, pos, quat, np.ones(3), *colour))
    self.shapes: List[Shape] = []
    for kind, parts in rows.items():
      body, pos, quat, scale, rgb, alpha = zip(*parts)
      self.shapes.append(
        Shape(
          kind=kind,
          body=np.asarray(body, dtype=np.int64),
          pos=np.asarray(pos),
          quat=np.asarray(quat),
          scale=np.asarray(scale),
          rgb=np.asarray(rgb, dtype=np.uint8),
          opacity=np.asarray(alpha, dtype=np.float64),
          mesh=meshes.get(kind),
        )
      )

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
