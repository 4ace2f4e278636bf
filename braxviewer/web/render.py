"""Draw N copies of one MuJoCo model in a viser scene, posed from body poses.

The model's geoms become instances of a few shared shapes (see
:mod:`primitives`): one instanced mesh per shape and level of detail for all
envs (:mod:`shape_meshes`), so a frame is a handful of messages whatever the
env count. Each instance is drawn as coarsely as its size on the open pages
allows (see :mod:`detail`). The ground plane becomes a grid under the envs
(see :mod:`floor`), a shared static world is drawn once (:mod:`world`).
Sites are shapes of their own and spatial tendons one instanced tube
(:mod:`tendon_tubes`), so the page can hide either without a rebuild
(:meth:`SceneView.set_visible`). Over the envs: the selection marker and
done dots (:mod:`env_markers`). :class:`SceneView` puts these together.
"""

from __future__ import annotations

import time
from typing import Callable, List, Optional, Set, Tuple

import mujoco
import numpy as np
import viser

from braxviewer.scene import grid
from braxviewer.scene.layout import choose_layout, shared_bodies
from braxviewer.web import detail
from braxviewer.web.drawn import Item, drawn_items
from braxviewer.web.env_markers import EnvMarkers
from braxviewer.web.floor import Floor
from braxviewer.web.primitives import CATEGORIES, VISIBLE_GROUPS, Parts
from braxviewer.web.shape_meshes import ShapeMeshes
from braxviewer.web.tendon_tubes import TendonTubes
from braxviewer.web.world import StaticWorld, split

_PLANE = int(mujoco.mjtGeom.mjGEOM_PLANE)
_HFIELD = int(mujoco.mjtGeom.mjGEOM_HFIELD)
_MARKER_PERIOD = 0.1  # seconds between moves of the selection marker
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
    self._detail_at = -np.inf
    self._views_seen: Tuple = ()
    self._hidden: Set[str] = set()  # categories not drawn (see set_visible)
    self._pose: Optional[Tuple[np.ndarray, np.ndarray]] = None
    clicked = self._clicked if on_env_click is not None else None
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
      self._meshes = ShapeMeshes(
        server, self.root, self._parts, self.offsets, clicked
      )
      self._tubes = TendonTubes(
        server, f"{self.root}/tendons", model, self.num_envs, clicked
      )
      self._markers = EnvMarkers(
        server, self.root, self.num_envs, self.extent, self.roots
      )
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
      self._meshes.show(
        xpos[sel], xquat[sel], sel, self._hidden, views, resized, self._shift
      )
      if "tendon" not in self._hidden:
        self._tubes.show(xpos[sel], xquat[sel])
      if now - self._marker_at >= _MARKER_PERIOD:
        self._marker_at = now
        self._place_selected()
      if done is not None or resized:  # resized: others' dots go too
        self._markers.mark_done(
          np.zeros(self.num_envs, bool)
          if done is None
          else np.asarray(done, dtype=bool),
          self.roots,
          self._only,
        )
    self._server.flush()

  def _place_selected(self) -> None:
    self._markers.place_selected(self._selected, self.roots)

  @property
  def triangles(self) -> int:
    """Triangles of the envs' shapes the page draws now (mesh assets left
    out: they are drawn as they are)."""
    tendons = 0 if "tendon" in self._hidden else self._tubes.triangles
    return self._meshes.triangles + self._world.triangles + tendons

  def detail_stale(self) -> bool:
    """Whether the pages' cameras moved (or pages came or went) since the
    levels of detail were chosen: a still scene needs a redraw then."""
    views = detail.views_of(self._server.get_clients().values())
    return _signature(views) != self._views_seen

  def detail_levels(self, kind: str) -> Optional[np.ndarray]:
    """The level of detail (0: coarsest) of each drawn instance of the
    first shape whose kind starts with ``kind`` (e.g. ``"capsule"``), or
    None before one was chosen."""
    return self._meshes.detail_levels(kind)

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
    self._meshes.remove()
    self._tubes.remove()
    self._markers.remove()
    if self._floor is not None:
      self._floor.remove()
    self._world.remove()
    self._frame.remove()

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
      self._meshes.set_visible(category, visible)
      self._world.set_visible(category, visible)
      if category == "tendon":
        self._tubes.set_visible(visible)
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
      tendons=self._tubes.paths,
      categories=[c for c in CATEGORIES if c not in self._hidden],
    )
