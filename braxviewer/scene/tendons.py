"""Where MuJoCo's viewer draws the spatial tendons of N envs, from body poses.

MuJoCo draws a spatial tendon as capsules between consecutive points of its
path (``mj_tendon``'s wrap points): none across a pulley, half as wide where
both ends lie on a wrapping geom, and a slack string of two sites under
gravity as a hanging catenary (:mod:`braxviewer.scene.catenary`).
:class:`TendonPaths` gives those segments for the body poses of N envs (grid
offsets included) in a fixed number of slots per tendon, unused slots with
radius 0, so a renderer can draw them all as one instanced mesh. Paths of
sites only are computed for all envs at once in numpy; paths that wrap
around geoms go through MuJoCo's own ``mj_tendon``, one env at a time. Poses
of mocap bodies come in with the others. numpy + mujoco only.
"""

from __future__ import annotations

import dataclasses
from typing import List, Optional, Tuple

import mujoco
import numpy as np

from braxviewer.scene.catenary import catenary
from braxviewer.scene.quat import multiply, rotate, to_matrix

_W = mujoco.mjtWrap
_SITE = int(_W.mjWRAP_SITE)
_PULLEY = int(_W.mjWRAP_PULLEY)
_GEOMS = (int(_W.mjWRAP_SPHERE), int(_W.mjWRAP_CYLINDER))
VISIBLE_GROUPS = (0, 1, 2)  # MuJoCo's default visible tendon groups
_DEFAULT_RGBA = (0.5, 0.5, 0.5, 1.0)


def material_rgba(
  model: mujoco.MjModel, matid: int, rgba: np.ndarray
) -> np.ndarray:
  """The colour MuJoCo's viewer gives an object with material ``matid``
  and its own ``rgba``: its own unless it is the default grey and a
  material is given, then the material's."""
  own = np.asarray(rgba, dtype=np.float64)
  if 0 <= matid < model.nmat and np.allclose(own, _DEFAULT_RGBA, atol=1e-7):
    own = np.asarray(model.mat_rgba[matid], dtype=np.float64)
  return np.clip(own, 0.0, 1.0)


@dataclasses.dataclass(frozen=True)
class Segments:
  """Straight pieces of the tendons of E envs, in fixed slots.

  Attributes:
    start: ``(E, S, 3)`` world position of each piece's first end.
    end: ``(E, S, 3)`` of its other end.
    radius: ``(E, S)`` capsule radius; 0 where the slot is unused.
  """

  start: np.ndarray
  end: np.ndarray
  radius: np.ndarray

  @property
  def centre(self) -> np.ndarray:
    return 0.5 * (self.start + self.end)

  @property
  def half_length(self) -> np.ndarray:
    return 0.5 * np.linalg.norm(self.end - self.start, axis=-1)


@dataclasses.dataclass
class _Tendon:
  id: int
  slots: slice
  width: float
  sites: np.ndarray  # sites-only path: site of each entry (-1: pulley)
  wraps: bool  # the path wraps around geoms (MuJoCo computes it)
  spring: bool  # a slack spring (catenary whatever the length)
  limit: Optional[float]  # catenary while shorter than this, or None


class TendonPaths:
  """The drawn segments of a model's visible spatial tendons.

  Args:
    model: the single-env model.
  """

  def __init__(self, model: mujoco.MjModel):
    self.model = model
    self._data = mujoco.MjData(model)
    self._catenary_points = min(int(model.vis.quality.numslices) + 1, 100)
    gravity = np.asarray(model.opt.gravity, dtype=np.float64)
    self._up = -gravity / max(float(np.linalg.norm(gravity)), 1e-300)
    self.tendons: List[_Tendon] = []
    rgba: List[np.ndarray] = []
    slot = 0
    for t in range(model.ntendon):
      adr, num = int(model.tendon_adr[t]), int(model.tendon_num[t])
      types = np.asarray(model.wrap_type[adr : adr + num], dtype=int)
      colour = material_rgba(
        model, int(model.tendon_matid[t]), model.tendon_rgba[t]
      )
      if (
        num < 2
        or types[0] != _SITE
        or int(model.tendon_group[t]) not in VISIBLE_GROUPS
        or colour[3] <= 0
      ):
        continue
      ids = np.asarray(model.wrap_objid[adr : adr + num], dtype=int)
      wraps = bool(np.isin(types, _GEOMS).any())
      spring, limit = self._catenary_rule(t, num)
      if wraps:  # a geom adds two points, and an arc between them
        geoms = int(np.isin(types, _GEOMS).sum())
        most = num + geoms - 1 + geoms * (int(model.vis.quality.numslices) - 1)
      else:
        most = num - 1
        if spring or limit is not None:
          most = max(most, self._catenary_points - 1)
      self.tendons.append(
        _Tendon(
          id=t,
          slots=slice(slot, slot + most),
          width=float(model.tendon_width[t]),
          sites=np.where(types == _SITE, ids, -1),
          wraps=wraps,
          spring=spring,
          limit=limit,
        )
      )
      rgba.append(np.tile(colour, (most, 1)))
      slot += most
    self.num_slots = slot
    self.rgba = np.concatenate(rgba) if rgba else np.zeros((0, 4))
    """``(S, 4)`` colour of each slot (its tendon's)."""
    self.slot_tendon = np.concatenate(
      [np.full(t.slots.stop - t.slots.start, t.id) for t in self.tendons]
      if self.tendons
      else [np.zeros(0, dtype=int)]
    )
    """``(S,)`` tendon id of each slot."""
    self._sites = np.unique(
      np.concatenate(
        [t.sites[t.sites >= 0] for t in self.tendons]
        + [self._wrap_objects(mujoco.mjtWrap.mjWRAP_SITE)]
        + [self._side_sites()]
      )
    ).astype(int)
    self._geoms = self._wrap_objects(None)

  def __bool__(self) -> bool:
    return bool(self.tendons)

  # -- set up --------------------------------------------------------------

  def _catenary_rule(self, t: int, num: int) -> Tuple[bool, Optional[float]]:
    """When MuJoCo draws tendon ``t`` as a hanging string: ``(always,
    while shorter than)``, from its stiffness, damping, limits, gravity."""
    m = self.model
    poly = getattr(m, "tendon_stiffnesspoly", np.zeros((m.ntendon, 1)))
    dpoly = getattr(m, "tendon_dampingpoly", np.zeros((m.ntendon, 1)))
    stiff = bool(m.tendon_stiffness[t] != 0 or np.any(poly[t] != 0))
    damped = bool(m.tendon_damping[t] != 0 or np.any(dpoly[t] != 0))
    actuated = any(
      int(m.actuator_trntype[a]) == int(mujoco.mjtTrn.mjTRN_TENDON)
      and int(m.actuator_trnid[a, 0]) == t
      for a in range(m.nu)
    )
    gravity_off = bool(
      int(m.opt.disableflags) & int(mujoco.mjtDisableBit.mjDSBL_GRAVITY)
    )
    if (
      gravity_off
      or float(np.linalg.norm(m.opt.gravity)) <= mujoco.mjMINVAL
      or num != 2
      or damped
      or m.tendon_frictionloss[t] != 0
      or actuated
    ):
      return False, None
    spring_range = m.tendon_lengthspring[t]
    if stiff:
      return bool(spring_range[0] == 0 and spring_range[1] > 0), None
    lower, upper = m.tendon_range[t]
    if m.tendon_limited[t] == 1 and lower == 0:
      return False, float(upper)
    return False, None

  def _wrap_objects(self, kind) -> np.ndarray:
    """Sites (``kind`` site) or geoms (None) on wrapping paths."""
    m = self.model
    found = []
    for t in self.tendons:
      if not t.wraps:
        continue
      adr, num = int(m.tendon_adr[t.id]), int(m.tendon_num[t.id])
      types = np.asarray(m.wrap_type[adr : adr + num], dtype=int)
      ids = np.asarray(m.wrap_objid[adr : adr + num], dtype=int)
      pick = types == _SITE if kind is not None else np.isin(types, _GEOMS)
      found.append(ids[pick])
    return np.concatenate(found).astype(int) if found else np.zeros(0, int)

  def _side_sites(self) -> np.ndarray:
    m = self.model
    found = []
    for t in self.tendons:
      if t.wraps:
        adr, num = int(m.tendon_adr[t.id]), int(m.tendon_num[t.id])
        prm = np.asarray(m.wrap_prm[adr : adr + num])
        types = np.asarray(m.wrap_type[adr : adr + num], dtype=int)
        side = prm[np.isin(types, _GEOMS)].astype(int)
        found.append(side[side >= 0])
    return np.concatenate(found).astype(int) if found else np.zeros(0, int)

  # -- per frame -----------------------------------------------------------

  def segments(self, xpos: np.ndarray, xquat: np.ndarray) -> Segments:
    """The tendons' segments for body poses ``xpos (E, nbody, 3)``,
    ``xquat (E, nbody, 4)`` (world frame, wxyz)."""
    m = self.model
    xpos = np.asarray(xpos, dtype=np.float64)
    xquat = np.asarray(xquat, dtype=np.float64)
    envs = xpos.shape[0]
    start = np.zeros((envs, self.num_slots, 3))
    end = np.zeros((envs, self.num_slots, 3))
    radius = np.zeros((envs, self.num_slots))
    site_pos = np.zeros((envs, m.nsite, 3))
    if len(self._sites):
      body = m.site_bodyid[self._sites]
      site_pos[:, self._sites] = xpos[:, body] + rotate(
        xquat[:, body], np.asarray(m.site_pos[self._sites])
      )
    wrapped = [t for t in self.tendons if t.wraps]
    for t in self.tendons:
      if not t.wraps:
        self._sites_path(t, site_pos, start, end, radius)
    if wrapped:
      self._wrapped_paths(wrapped, xpos, xquat, site_pos, start, end, radius)
    return Segments(start, end, radius)

  def _sites_path(self, t: _Tendon, site_pos, start, end, radius) -> None:
    pts = site_pos[:, np.maximum(t.sites, 0)]  # (E, K, 3)
    first = slice(t.slots.start, t.slots.start + len(t.sites) - 1)
    start[:, first] = pts[:, :-1]
    end[:, first] = pts[:, 1:]
    joined = (t.sites[:-1] >= 0) & (t.sites[1:] >= 0)
    radius[:, first] = np.where(joined, t.width, 0.0)
    if not t.spring and t.limit is None:
      return
    a, b = pts[:, 0], pts[:, 1]
    hangs = np.full(len(a), t.spring)
    if t.limit is not None:
      hangs = np.linalg.norm(b - a, axis=1) < t.limit
    if not hangs.any():
      return
    limit = t.limit if t.limit is not None else self._spring_length(t)
    pts, used = catenary(
      a[hangs],
      b[hangs],
      self._up,
      np.full(int(hangs.sum()), limit),
      self._catenary_points,
    )
    count = pts.shape[1] - 1
    span = slice(t.slots.start, t.slots.start + count)
    start[hangs, span] = pts[:, :-1]
    end[hangs, span] = pts[:, 1:]
    radius[hangs, span] = np.where(
      np.arange(count)[None] < (used - 1)[:, None], t.width, 0.0
    )

  def _spring_length(self, t: _Tendon) -> float:
    return float(self.model.tendon_lengthspring[t.id][1])

  def _wrapped_paths(
    self, tendons, xpos, xquat, site_pos, start, end, radius
  ) -> None:
    """Paths around geoms: MuJoCo's mj_tendon per env, from the sites' and
    geoms' world poses."""
    m, d = self.model, self._data
    geoms = self._geoms
    body = m.geom_bodyid[geoms]
    geom_pos = xpos[:, body] + rotate(
      xquat[:, body], np.asarray(m.geom_pos[geoms])
    )
    geom_mat = to_matrix(
      multiply(xquat[:, body], np.asarray(m.geom_quat[geoms]))
    ).reshape(len(xpos), len(geoms), 9)
    for env in range(len(xpos)):
      d.site_xpos[self._sites] = site_pos[env, self._sites]
      d.geom_xpos[geoms] = geom_pos[env]
      d.geom_xmat[geoms] = geom_mat[env]
      mujoco.mj_tendon(m, d)
      for t in tendons:
        pts = self._wrapped_points(t)
        count = min(len(pts) - 1, t.slots.stop - t.slots.start)
        span = slice(t.slots.start, t.slots.start + count)
        start[env, span] = pts[:count, :3]
        end[env, span] = pts[1 : count + 1, :3]
        joined = pts[1 : count + 1, 3] >= 0
        radius[env, span] = np.where(joined, t.width, 0.0)

  def _wrapped_points(self, t: _Tendon) -> np.ndarray:
    """``(K, 4)`` points of tendon ``t``'s path after mj_tendon: x, y, z
    and 0, or -1 where no segment comes to it (a pulley on either end). An
    arc over a wrapping geom becomes pieces of equal angle, as MuJoCo draws
    it: ``numslices`` per half turn (at least one), on a great circle of a
    sphere or a helix around a cylinder."""
    m, d = self.model, self._data
    adr, num = int(d.ten_wrapadr[t.id]), int(d.ten_wrapnum[t.id])
    pts = d.wrap_xpos.reshape(-1, 3)[adr : adr + num]
    obj = d.wrap_obj.reshape(-1)[adr : adr + num]
    out = [np.append(pts[0], -1.0)]
    for k in range(1, num):
      g = int(obj[k])
      if g >= 0 and obj[k - 1] == g:
        for p in _arc(m, d, g, pts[k - 1], pts[k])[1:-1]:
          out.append(np.append(p, 0.0))
      pulley = g == -2 or obj[k - 1] == -2
      out.append(np.append(pts[k], -1.0 if pulley else 0.0))
    return np.asarray(out)


def _arc(
  model: mujoco.MjModel, data: mujoco.MjData, geom: int, a, b
) -> np.ndarray:
  """``(n + 1, 3)`` points from ``a`` to ``b`` over ``geom`` (a sphere:
  its great circle; a cylinder: a helix about its axis, the shorter way)."""
  centre = data.geom_xpos[geom]
  rot = data.geom_xmat[geom].reshape(3, 3)
  la, lb = rot.T @ (a - centre), rot.T @ (b - centre)
  slices = int(model.vis.quality.numslices)
  if int(model.geom_type[geom]) == int(mujoco.mjtGeom.mjGEOM_SPHERE):
    cos = la @ lb / max(np.linalg.norm(la) * np.linalg.norm(lb), 1e-300)
    angle = float(np.arccos(np.clip(cos, -1.0, 1.0)))
    n = max(1, int(round(angle * slices / np.pi)))
    f = np.arange(n + 1)[:, None] / n
    if np.sin(angle) < 1e-12:
      local = la + f * (lb - la)
    else:
      local = (np.sin((1 - f) * angle) * la + np.sin(f * angle) * lb) / np.sin(
        angle
      )
  else:
    angle = float(np.arctan2(la[0] * lb[1] - la[1] * lb[0], la[:2] @ lb[:2]))
    n = max(1, int(round(abs(angle) * slices / np.pi)))
    f = np.arange(n + 1) / n
    phi = np.arctan2(la[1], la[0]) + f * angle
    r = float(np.hypot(la[0], la[1]))
    local = np.stack(
      [r * np.cos(phi), r * np.sin(phi), la[2] + f * (lb[2] - la[2])], 1
    )
  return centre + local @ rot.T
