"""Draw N copies of one MuJoCo model in a viser scene, posed from body poses.

The model's geoms become instances of a few shared shapes (see
:mod:`primitives`): one instanced mesh per shape and level of detail for all
envs, so a frame is a handful of messages whatever the env count. Each
instance is drawn as coarsely as its size on the open pages allows (see
:mod:`detail`). The ground plane becomes a grid under the envs (see
:mod:`floor`). Sites are shapes of their own and spatial tendons one
instanced tube (posed per frame from :mod:`braxviewer.scene.tendons`), so the
page can hide either without a rebuild (:meth:`SceneView.set_visible`).
"""

from __future__ import annotations

import time
from typing import Callable, List, Optional, Set, Tuple

import mujoco
import numpy as np
import trimesh
import viser

from braxviewer.scene import grid
from braxviewer.scene.layout import choose_layout, shared_bodies
from braxviewer.scene.tendons import TendonPaths, z_to
from braxviewer.web import detail
from braxviewer.web.drawn import Item, drawn_items
from braxviewer.web.floor import Floor
from braxviewer.web.primitives import CATEGORIES, VISIBLE_GROUPS, Parts, Shape
from braxviewer.web.world import StaticWorld, split

_PLANE = int(mujoco.mjtGeom.mjGEOM_PLANE)
_HFIELD = int(mujoco.mjtGeom.mjGEOM_HFIELD)
_MARKER_COLOR = (230, 60, 60)
_SELECT_COLOR = (255, 190, 0)
_MARKER_PERIOD = 0.1  # seconds between moves of the selection marker
_TENDON_SIDES = 6  # tendons are thin: a hexagonal tube, 12 triangles
_DETAIL_PERIOD = 0.2  # seconds between choices of the level of detail


def setup_lighting(server: viser.ViserServer, shadows: bool = False) -> None:
  """Plain lights, no HDR environment map.

  Image-based lighting costs ~15x the frame time in software WebGL
  (SwiftShader: 3 frames/s instead of ~50), and shadows about halve the
  frame rate there; plain lights without shadows keep headless and GPU-less
  browsers fluid. Shadows can be switched on from the page.
  """
  server.scene.configure_environment_map(None)
  server.scene.configure_default_lights(True, shadows)
  server.scene.add_light_hemisphere(
    "/lights/sky",
    sky_color=(255, 255, 255),
    ground_color=(90, 90, 110),
    intensity=0.8,
  )


def body_extent(
  model: mujoco.MjModel,
  data: mujoco.MjData,
  geoms: Optional[np.ndarray] = None,
) -> float:
  """Radius of one env's geometry: the ``geoms`` mask (default: all) but
  planes (stat.extent counts them)."""
  mask = np.ones(model.ngeom, bool) if geoms is None else np.asarray(geoms)
  ids = [g for g in np.flatnonzero(mask) if model.geom_type[g] != _PLANE]
  if not ids:
    return 0.5
  pos = data.geom_xpos[ids]
  center = (pos.max(axis=0) + pos.min(axis=0)) / 2
  reach = np.linalg.norm(pos - center, axis=1) + model.geom_rbound[ids]
  return float(np.clip(reach.max(), 0.05, 50.0))


def _signature(views) -> Tuple:
  """The cameras' positions (to a centimetre), fields of view and heights."""
  return tuple(
    (tuple(np.round(v.position, 2)), round(v.fov, 3), v.height_px)
    for v in views
  )


def _tracked_body(model: mujoco.MjModel) -> int:
  for body_id in range(1, model.nbody):
    if model.body_weldid[body_id] != 0:  # not welded to the world
      return body_id
  return 0


class SceneView:
  """The envs' geometry in the scene; :meth:`show` poses it.

  Args:
    server: the viser server.
    model: the single-env model.
    offsets: ``(N, 3)`` grid offset of every env.
    on_env_click: called with the env index when a body is clicked.
    layout: ``"grid"`` or ``"overlay"`` (:mod:`braxviewer.scene.layout`): which
      geoms are drawn once for all envs (a terrain; in overlay the whole
      static world) rather than per env.

  Attributes:
    extent: radius of the robot (bodies not welded to the world; all geoms
      when nothing moves): follow, marker, done dots.
    cell_extent: radius of what is drawn per env (the robot, and a
      fixed-base env's arena): the grid presets fit it.
  """

  root = "/envs"

  def __init__(
    self,
    server: viser.ViserServer,
    model: mujoco.MjModel,
    offsets: np.ndarray,
    on_env_click: Optional[Callable[[int], None]] = None,
    layout: str = "grid",
  ):
    self._server = server
    self.model = model
    self.offsets = np.asarray(offsets, dtype=np.float64).reshape(-1, 3)
    self.num_envs = len(self.offsets)
    self.tracked_body = _tracked_body(model)
    self._on_env_click = on_env_click
    self._only: Optional[int] = None
    self._shift = np.zeros(3)
    self._selected = 0
    self._resized = False
    self._marker_at = 0.0
    data = mujoco.MjData(model)
    mujoco.mj_kinematics(model, data)
    self.roots = self.offsets + data.xpos[self.tracked_body]
    self._parts = Parts(model)
    # the static world shared by all envs: out of the per-env shapes
    self.layout = choose_layout(model, layout)
    shared = shared_bodies(model, self.layout)
    self._parts.shapes, once = split(self._parts.shapes, shared)
    per_env = ~shared[model.geom_bodyid]
    moving = model.body_weldid[model.geom_bodyid] != 0
    self.cell_extent = body_extent(model, data, per_env)
    self.extent = (
      body_extent(model, data, moving) if moving.any() else self.cell_extent
    )
    self._frame = server.scene.add_frame(self.root, show_axes=False)
    # Per shape: one handle per level of detail, and the level of each
    # drawn instance (None: choose before the next frame).
    self._handles: List[List] = []
    self._levels: List[Optional[np.ndarray]] = [None] * len(self._parts.shapes)
    self._detail_at = -np.inf
    self._views_seen: Tuple = ()
    self._hidden: Set[str] = set()  # categories not drawn (see set_visible)
    self._tendons = TendonPaths(model)
    self._tendon_count = -1  # tendon instances the handle holds
    self._pose: Optional[Tuple[np.ndarray, np.ndarray]] = None
    with server.atomic():
      self._world = StaticWorld(
        server,
        f"{self.root}/world",
        self._parts,
        once,
        data.xpos + self.offsets[0],
        data.xquat,
      )
      self._floor = self._add_floor(data)
      for shape in self._parts.shapes:
        self._handles.append(self._add_shape(shape))
      self._tendon_handle = self._add_tendons()
      self._marker = server.scene.add_icosphere(
        f"{self.root}/selected",
        radius=0.06 * self.extent,
        color=_SELECT_COLOR,
        cast_shadow=False,
        receive_shadow=False,
      )
      self._label = server.scene.add_label(
        f"{self.root}/selected_label", "env 0", anchor="bottom-center"
      )
      # one env: nothing to tell apart, no marker over its head
      self._marker.visible = self._label.visible = self.num_envs > 1
      sphere = trimesh.creation.icosphere(
        subdivisions=1, radius=0.08 * self.extent
      )
      self._dones = server.scene.add_batched_meshes_simple(
        f"{self.root}/done",
        np.asarray(sphere.vertices, np.float32),
        np.asarray(sphere.faces, np.uint32),
        batched_wxyzs=np.tile([1.0, 0.0, 0.0, 0.0], (self.num_envs, 1)),
        batched_positions=self._above(0.5),
        batched_scales=np.zeros(self.num_envs),
        batched_colors=_MARKER_COLOR,
        cast_shadow=False,
        receive_shadow=False,
      )
    self._done_scale = np.zeros(self.num_envs)
    self.select(0)

  # -- building ------------------------------------------------------------

  def _add_floor(self, data: mujoco.MjData) -> Optional[Floor]:
    """A grid for the model's lowest ground plane (fixed to the world);
    none over a heightfield (the ground there: a grid would z-fight it)."""
    model = self.model
    hfields = (model.geom_type == _HFIELD) & np.isin(
      model.geom_group, VISIBLE_GROUPS
    )
    if np.any(hfields & (model.body_weldid[model.geom_bodyid] == 0)):
      return None
    planes = [g for g in range(model.ngeom) if grid.is_floor(model, g)]
    if not planes:
      return None
    z = min(float(data.geom_xpos[g][2]) for g in planes)
    floor = Floor(
      self._server,
      f"{self.root}/floor",
      z - 1e-3,
      margin=max(2.0 * self.cell_extent, 1.0),
    )
    floor.cover(self.roots)
    return floor

  def _instances(self, shape: Shape, envs: slice):
    n = len(range(*envs.indices(self.num_envs)))
    return (
      np.tile(shape.scale, (n, 1)),
      np.tile(shape.rgb, (n, 1)),
      np.tile(shape.opacity, n),
    )

  def _add_shape(self, shape: Shape) -> List:
    """One instanced mesh per level of detail, all envs in the coarsest."""
    pos, quat = self._parts.poses(
      shape,
      np.broadcast_to(
        self.offsets[:, None], (self.num_envs, self.model.nbody, 3)
      ),
      np.tile([1.0, 0.0, 0.0, 0.0], (self.num_envs, self.model.nbody, 1)),
    )
    scale, rgb, opacity = self._instances(shape, slice(None))
    name = f"{self.root}/{shape.kind.replace(':', '_')}"
    if shape.category != "geom":  # sites: their own meshes (hidden apart)
      name = f"{self.root}/{shape.category}s/{shape.kind.replace(':', '_')}"
    if shape.mesh is not None:
      handles = [
        self._server.scene.add_batched_meshes_trimesh(
          name,
          shape.mesh,
          batched_wxyzs=quat,
          batched_positions=pos,
          batched_scales=scale,
          lod="off",
        )
      ]
    else:
      handles = []
      for i, level in enumerate(detail.levels(shape.kind)):
        handles.append(
          self._server.scene.add_batched_meshes_simple(
            f"{name}/{i}",
            np.asarray(level.mesh.vertices, np.float32),
            np.asarray(level.mesh.faces, np.uint32),
            batched_wxyzs=quat,
            batched_positions=pos,
            batched_scales=scale,
            batched_colors=rgb,
            batched_opacities=None if np.all(opacity >= 1) else opacity,
            lod="off",
            visible=i == 0,
          )
        )
    if self._on_env_click is not None:
      for handle in handles:
        handle.on_click(self._clicked)
    return handles

  def _clicked(self, event) -> None:
    """Pick the env whose tracked body is nearest to the click ray."""
    if self._only is not None:
      env = self._only
    else:
      origin = np.asarray(event.ray_origin) - self._shift
      direction = np.asarray(event.ray_direction)
      direction = direction / max(np.linalg.norm(direction), 1e-9)
      rel = self.roots - origin
      along = np.clip(rel @ direction, 0.0, None)
      env = int(
        np.argmin(np.linalg.norm(rel - along[:, None] * direction, axis=1))
      )
    if self._on_env_click is not None:
      self._on_env_click(env)

  # -- updates ---------------------------------------------------------------

  def _envs(self) -> slice:
    if self._only is None:
      return slice(None)
    return slice(self._only, self._only + 1)

  def _above(self, height: float) -> np.ndarray:
    return self.roots + [0.0, 0.0, height * self.extent]

  def show(
    self, xpos: np.ndarray, xquat: np.ndarray, done: Optional[np.ndarray] = None
  ) -> None:
    """Pose every env: ``xpos (N, nbody, 3)``, ``xquat (N, nbody, 4)`` wxyz."""
    self.roots = np.asarray(xpos[:, self.tracked_body], dtype=np.float64)
    sel = self._envs()
    resized, self._resized = self._resized, False
    now = time.monotonic()
    views = None
    if resized or now - self._detail_at >= _DETAIL_PERIOD:
      self._detail_at = now
      views = detail.views_of(self._server.get_clients().values())
      self._views_seen = _signature(views)
    with self._server.atomic():
      if self._floor is not None:
        self._floor.cover(self.roots[sel])
      self._pose = (xpos, xquat)
      for i, shape in enumerate(self._parts.shapes):
        if shape.category in self._hidden:
          continue
        pos, quat = self._parts.poses(shape, xpos[sel], xquat[sel])
        changed = False
        if views is not None:
          changed = self._choose_levels(i, pos, sel, resized, views)
        self._pose_levels(i, pos, quat, sel, changed)
      self._show_tendons(xpos[sel], xquat[sel])
      if now - self._marker_at >= _MARKER_PERIOD:
        self._marker_at = now
        self._place_selected()
      if done is not None or resized:  # resized: others' dots go too
        self._mark_done(
          np.zeros(self.num_envs, bool)
          if done is None
          else np.asarray(done, dtype=bool)
        )
    self._server.flush()

  def _choose_levels(
    self, i: int, pos: np.ndarray, sel: slice, resized: bool, views
  ) -> bool:
    """Level of detail of each drawn instance of shape ``i``; True when it
    changed (the instances move between meshes)."""
    shape = self._parts.shapes[i]
    if len(self._handles[i]) > 1:
      envs = len(range(*sel.indices(self.num_envs)))
      new = detail.choose(
        np.tile(shape.radius, envs),
        pos + self._shift,
        views,
        [level.deviation for level in detail.levels(shape.kind)],
      )
    else:
      new = np.zeros(len(pos), dtype=np.int64)
    old = self._levels[i]
    if not resized and old is not None and np.array_equal(new, old):
      return False
    self._levels[i] = new
    return True

  def _pose_levels(
    self, i: int, pos: np.ndarray, quat: np.ndarray, sel: slice, changed: bool
  ) -> None:
    shape, levels = self._parts.shapes[i], self._levels[i]
    if levels is None or len(levels) != len(pos):  # not chosen yet
      levels = self._levels[i] = np.zeros(len(pos), dtype=np.int64)
      changed = True
    # Per-instance arrays, wanted when instances moved between levels.
    instances = self._instances(shape, sel) if changed else None
    for level, handle in enumerate(self._handles[i]):
      mask = levels == level
      if not mask.any():
        if changed:
          handle.visible = False
        continue
      handle.batched_positions = pos[mask]
      handle.batched_wxyzs = quat[mask]
      if instances is not None:  # changed: every per-instance array
        scale, rgb, opacity = instances
        handle.batched_scales = scale[mask]
        if shape.mesh is None:
          handle.batched_colors = rgb[mask]
          if not np.all(opacity >= 1):
            handle.batched_opacities = opacity[mask]
        handle.visible = True

  def _mark_done(self, done: np.ndarray) -> None:
    """Red dots above envs whose episode just ended; they fade over frames."""
    scale = np.where(done, 1.0, self._done_scale * 0.85)
    scale[scale < 0.05] = 0.0
    if self._only is not None:
      keep = np.zeros_like(scale)
      keep[self._only] = scale[self._only]
      scale = keep
    if np.any(scale) or np.any(self._done_scale):
      self._dones.batched_positions = self._above(0.5)
      self._dones.batched_scales = scale
    self._done_scale = scale

  def _place_selected(self) -> None:
    env = self._selected
    above = self.roots[env] + [0.0, 0.0, 0.55 * self.extent]
    self._marker.position = above
    self._label.position = above + [0.0, 0.0, 0.07 * self.extent]
    self._label.text = f"env {env}"

  @property
  def triangles(self) -> int:
    """Triangles of the envs' shapes the page draws now (mesh assets left
    out: they are drawn as they are)."""
    total = 0
    for shape, levels in zip(self._parts.shapes, self._levels):
      if shape.mesh is None and levels is not None:
        meshes = detail.levels(shape.kind)
        counts = np.bincount(levels, minlength=len(meshes))
        total += sum(int(n) * m.triangles for n, m in zip(counts, meshes))
    return total + self._world.triangles + self._tendon_triangles()

  def detail_stale(self) -> bool:
    """Whether the pages' cameras moved (or pages came or went) since the
    levels of detail were chosen: a still scene needs a redraw then."""
    views = detail.views_of(self._server.get_clients().values())
    return _signature(views) != self._views_seen

  def detail_levels(self, kind: str) -> Optional[np.ndarray]:
    """The level of detail (0: coarsest) of each drawn instance of the
    first shape whose kind starts with ``kind`` (e.g. ``"capsule"``), or
    None before one was chosen."""
    for shape, levels in zip(self._parts.shapes, self._levels):
      if shape.kind.startswith(kind):
        return None if levels is None else levels.copy()
    return None

  @property
  def selected(self) -> int:
    return self._selected

  def select(self, env: int) -> None:
    """Mark ``env`` as the selected one (label and marker above it)."""
    self._selected = int(np.clip(env, 0, self.num_envs - 1))
    if self._only is not None:
      self.show_only(self._selected)
    self._place_selected()

  def show_only(self, env: Optional[int]) -> None:
    """Draw only ``env`` (None draws all), from the next :meth:`show` on."""
    self._only = None if env is None else int(env)
    self._resized = True

  @property
  def offset(self) -> np.ndarray:
    """Where :meth:`shift` moved the scene (the drawn roots are
    ``roots + offset``)."""
    return self._shift.copy()

  def shift(self, offset: np.ndarray) -> None:
    """Move the whole scene by ``offset`` (camera follow keeps a body centred)."""
    self._shift = np.asarray(offset, dtype=np.float64)
    self._frame.position = self._shift

  def remove(self) -> None:
    """Take every handle out of the scene."""
    handles = [h for level in self._handles for h in level]
    if self._tendon_handle is not None:
      handles.append(self._tendon_handle)
    for handle in handles + [self._marker, self._label, self._dones]:
      handle.remove()
    if self._floor is not None:
      self._floor.remove()
    self._world.remove()
    self._frame.remove()

  # -- sites and tendons: what is drawn, shown or hidden -----------------------

  def _add_tendons(self):
    """One instanced tube for every tendon segment of every env (None
    without visible spatial tendons); posed by :meth:`_show_tendons`."""
    if not self._tendons:
      return None
    tube = _tube(_TENDON_SIDES)
    count = self.num_envs * self._tendons.num_slots
    handle = self._server.scene.add_batched_meshes_simple(
      f"{self.root}/tendons",
      np.asarray(tube.vertices, np.float32),
      np.asarray(tube.faces, np.uint32),
      batched_wxyzs=np.tile([1.0, 0.0, 0.0, 0.0], (count, 1)),
      batched_positions=np.zeros((count, 3)),
      batched_scales=np.zeros((count, 3)),
      batched_colors=(128, 128, 128),
      lod="off",
    )
    if self._on_env_click is not None:
      handle.on_click(self._clicked)
    return handle

  def _show_tendons(self, xpos: np.ndarray, xquat: np.ndarray) -> None:
    """Pose the tendon segments of the drawn envs (unused slots: scale 0)."""
    handle = self._tendon_handle
    if handle is None or "tendon" in self._hidden:
      return
    seg = self._tendons.segments(xpos, xquat)
    radius = seg.radius.reshape(-1)
    half = np.where(radius > 0, seg.half_length.reshape(-1), 0.0)
    count = len(radius)
    handle.batched_positions = seg.centre.reshape(-1, 3)
    handle.batched_wxyzs = z_to((seg.end - seg.start).reshape(-1, 3))
    handle.batched_scales = np.stack([radius, radius, half], axis=1)
    if count != self._tendon_count:  # first frame, or other envs drawn
      self._tendon_count = count
      rgba = np.tile(self._tendons.rgba, (len(xpos), 1))
      handle.batched_colors = np.round(rgba[:, :3] * 255).astype(np.uint8)
      if np.any(rgba[:, 3] < 1):
        handle.batched_opacities = rgba[:, 3].astype(np.float32)
      handle.visible = True

  def _tendon_triangles(self) -> int:
    if self._tendon_handle is None or "tendon" in self._hidden:
      return 0
    return max(self._tendon_count, 0) * 2 * _TENDON_SIDES

  def visible(self, category: str) -> bool:
    """Whether ``"site"``, ``"tendon"`` (or ``"geom"``) parts are drawn."""
    return category not in self._hidden

  def set_visible(self, category: str, visible: bool) -> None:
    """Draw or hide every part of a category (``"site"``, ``"tendon"``,
    ``"geom"``), from now on; hidden parts are not posed or sent. The next
    :meth:`show` draws shown ones again.

    Raises:
      ValueError: an unknown category.
    """
    if category not in CATEGORIES:
      raise ValueError(f"Unknown category {category!r}; use {CATEGORIES}.")
    if visible == (category not in self._hidden):
      return
    with self._server.atomic():
      if visible:
        self._hidden.discard(category)
      else:
        self._hidden.add(category)
      for i, shape in enumerate(self._parts.shapes):
        if shape.category == category:
          self._levels[i] = None  # shown again: levels chosen anew
          if not visible:
            for handle in self._handles[i]:
              handle.visible = False
      self._world.set_visible(category, visible)
      if category == "tendon" and self._tendon_handle is not None:
        self._tendon_handle.visible = visible
        self._tendon_count = -1
    self._server.flush()

  def drawn(self, env: int) -> List[Item]:
    """What is drawn of ``env`` at its last pose (:func:`drawn_items` of
    the per-env parts: a static world drawn once is not listed; empty
    before the first :meth:`show`)."""
    if self._pose is None:
      return []
    xpos, xquat = self._pose
    return drawn_items(
      self.model,
      xpos[env],
      xquat[env],
      parts=self._parts,
      tendons=self._tendons,
      categories=[c for c in CATEGORIES if c not in self._hidden],
    )


def _tube(sides: int) -> trimesh.Trimesh:
  """An open tube of radius 1 along z from -1 to 1 (a tendon segment: its
  ends are hidden in the next segment or in the sites it joins)."""
  angles = np.arange(sides) * (2 * np.pi / sides)
  ring = np.stack([np.cos(angles), np.sin(angles)], axis=1)
  verts = np.vstack(
    [np.c_[ring, np.full(sides, -1.0)], np.c_[ring, np.full(sides, 1.0)]]
  )
  j = np.arange(sides)
  k = (j + 1) % sides
  faces = np.vstack(
    [np.stack([j, k, j + sides], 1), np.stack([k, k + sides, j + sides], 1)]
  )
  return trimesh.Trimesh(verts, faces, process=False)
