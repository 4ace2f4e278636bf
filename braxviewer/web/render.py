"""Draw N copies of one MuJoCo model in a viser scene, posed from body poses.

Geometry comes from mjviser's converters (round primitives low-poly, see
``lowpoly``), one instanced
(batched) mesh per body and texture group, with one instance per env; fixed
geometry is instanced at every env's grid offset, ground planes become one
grid. Per frame only instance poses travel to the browser.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, List, Optional

import mujoco
import numpy as np
import trimesh
import viser
from mjviser.conversions import group_geoms_by_visual_compat, is_fixed_body

from braxviewer.web.lowpoly import body_mesh

_PLANE = int(mujoco.mjtGeom.mjGEOM_PLANE)
_VISIBLE_GROUPS = (0, 1, 2)  # MuJoCo's default visible geom groups
_MARKER_COLOR = (230, 60, 60)
_SELECT_COLOR = (255, 190, 0)


@dataclasses.dataclass
class _BodyMesh:
  handle: viser.BatchedGlbHandle
  body_id: int


def _visible_geoms(model: mujoco.MjModel, body_id: int) -> List[int]:
  return [
      g for g in range(model.ngeom)
      if model.geom_bodyid[g] == body_id
      and model.geom_type[g] != _PLANE
      and model.geom_rgba[g, 3] > 0
      and int(model.geom_group[g]) in _VISIBLE_GROUPS
  ]


def body_extent(model: mujoco.MjModel, data: mujoco.MjData) -> float:
  """Radius of one env's geometry (planes left out; stat.extent counts them)."""
  geoms = [g for g in range(model.ngeom) if model.geom_type[g] != _PLANE]
  if not geoms:
    return 0.5
  pos = data.geom_xpos[geoms]
  center = (pos.max(axis=0) + pos.min(axis=0)) / 2
  reach = np.linalg.norm(pos - center, axis=1) + model.geom_rbound[geoms]
  return float(np.clip(reach.max(), 0.05, 50.0))


def setup_lighting(server: viser.ViserServer, shadows: bool = True) -> None:
  """Plain lights, no HDR environment map.

  Image-based lighting costs ~15x the frame time in software WebGL
  (SwiftShader: 3 fps instead of ~50 for 4 ants); plain lights look close
  enough and keep headless and GPU-less browsers fluid.
  """
  server.scene.configure_environment_map(None)
  server.scene.configure_default_lights(True, shadows)
  server.scene.add_light_hemisphere(
      "/lights/sky", sky_color=(255, 255, 255), ground_color=(90, 90, 110),
      intensity=1.2)


def _tracked_body(model: mujoco.MjModel) -> int:
  for body_id in range(1, model.nbody):
    if not is_fixed_body(model, body_id):
      return body_id
  return 0


class SceneView:
  """The envs' geometry in the scene; :meth:`show` poses it.

  Args:
    server: the viser server.
    model: the single-env model.
    offsets: ``(N, 3)`` grid offset of every env.
    on_env_click: called with the env index when a body is clicked.
  """

  root = "/envs"

  def __init__(
      self,
      server: viser.ViserServer,
      model: mujoco.MjModel,
      offsets: np.ndarray,
      on_env_click: Optional[Callable[[int], None]] = None,
  ):
    self._server = server
    self.model = model
    self.offsets = np.asarray(offsets, dtype=np.float64).reshape(-1, 3)
    self.num_envs = len(self.offsets)
    self.tracked_body = _tracked_body(model)
    self._on_env_click = on_env_click
    self._only: Optional[int] = None
    self._shift = np.zeros(3)
    data = mujoco.MjData(model)
    mujoco.mj_kinematics(model, data)
    self._fixed_xpos = data.xpos.copy()
    self._fixed_xquat = data.xquat.copy()
    # Where every env's tracked body is; starts at the model's rest pose.
    self.roots = self.offsets + data.xpos[self.tracked_body]
    self.extent = body_extent(model, data)
    self._frame = server.scene.add_frame(self.root, show_axes=False)
    self._bodies: List[_BodyMesh] = []
    self._fixed: List[_BodyMesh] = []
    self._handles: list = []
    with server.atomic():
      self._add_planes()
      self._add_bodies()
      self._marker = server.scene.add_icosphere(
          f"{self.root}/selected", radius=0.06 * self.extent,
          color=_SELECT_COLOR, cast_shadow=False, receive_shadow=False,
      )
      self._label = server.scene.add_label(
          f"{self.root}/selected_label", "env 0", anchor="bottom-center",
      )
      self._dones = server.scene.add_batched_meshes_simple(
          f"{self.root}/done",
          *self._sphere(0.08 * self.extent),
          batched_wxyzs=np.tile([1.0, 0.0, 0.0, 0.0], (self.num_envs, 1)),
          batched_positions=self.roots + [0, 0, 0.5 * self.extent],
          batched_scales=np.zeros(self.num_envs),
          batched_colors=_MARKER_COLOR, cast_shadow=False,
          receive_shadow=False,
      )
    self._done_scale = np.zeros(self.num_envs)
    self.select(0)

  @staticmethod
  def _sphere(radius: float):
    mesh = trimesh.creation.icosphere(subdivisions=1, radius=radius)
    return (np.asarray(mesh.vertices, np.float32),
            np.asarray(mesh.faces, np.uint32))

  # -- building ------------------------------------------------------------

  def _add_planes(self) -> None:
    model = self.model
    for g in range(model.ngeom):
      if model.geom_type[g] != _PLANE or not is_fixed_body(
          model, int(model.geom_bodyid[g])):
        continue
      pos = self._fixed_xpos[model.geom_bodyid[g]] + model.geom_pos[g]
      self._handles.append(self._server.scene.add_grid(
          f"{self.root}/floor{g}", infinite_grid=True, fade_distance=60.0,
          cell_size=0.5, section_size=2.0, shadow_opacity=0.2,
          plane_opacity=0.4, position=pos + [0, 0, -1e-3],
      ))

  def _add_bodies(self) -> None:
    model, n = self.model, self.num_envs
    identity = np.tile([1.0, 0.0, 0.0, 0.0], (n, 1))
    for body_id in range(model.nbody):
      geoms = _visible_geoms(model, body_id)
      if not geoms:
        continue
      fixed = is_fixed_body(model, body_id)
      for sub, sub_geoms in enumerate(group_geoms_by_visual_compat(model, geoms)):
        mesh = body_mesh(model, sub_geoms)
        name = f"{self.root}/{'fixed' if fixed else 'body'}{body_id}_{sub}"
        if fixed:
          pos = self.offsets + self._fixed_xpos[body_id]
          quat = np.tile(self._fixed_xquat[body_id], (n, 1))
        else:
          pos, quat = self.roots.copy(), identity
        handle = self._server.scene.add_batched_meshes_trimesh(
            name, mesh, batched_wxyzs=quat, batched_positions=pos,
            lod="off", cast_shadow=True, receive_shadow=True,
        )
        if not fixed and self._on_env_click is not None:
          handle.on_click(self._clicked)
        (self._fixed if fixed else self._bodies).append(
            _BodyMesh(handle, body_id))

  def _clicked(self, event) -> None:
    """Pick the env whose tracked body is nearest to the click ray."""
    origin = np.asarray(event.ray_origin) - self._shift
    direction = np.asarray(event.ray_direction)
    direction = direction / max(np.linalg.norm(direction), 1e-9)
    rel = self.roots - origin
    along = np.clip(rel @ direction, 0.0, None)
    dist = np.linalg.norm(rel - along[:, None] * direction, axis=1)
    if self._only is not None:
      env = self._only
    else:
      env = int(np.argmin(dist))
    if self._on_env_click is not None:
      self._on_env_click(env)

  # -- updates ---------------------------------------------------------------

  def _envs(self) -> slice:
    if self._only is None:
      return slice(None)
    return slice(self._only, self._only + 1)

  def show(self, xpos: np.ndarray, xquat: np.ndarray,
           done: Optional[np.ndarray] = None) -> None:
    """Pose every env: ``xpos (N, nbody, 3)``, ``xquat (N, nbody, 4)`` wxyz."""
    self.roots = np.asarray(xpos[:, self.tracked_body], dtype=np.float64)
    sel = self._envs()
    with self._server.atomic():
      for body in self._bodies:
        body.handle.batched_positions = xpos[sel, body.body_id]
        body.handle.batched_wxyzs = xquat[sel, body.body_id]
      self._place_selected()
      if done is not None:
        self._mark_done(np.asarray(done, dtype=bool))
    self._server.flush()

  def _mark_done(self, done: np.ndarray) -> None:
    """Red dots above envs whose episode just ended; they fade over frames."""
    scale = np.where(done, 1.0, self._done_scale * 0.85)
    scale[scale < 0.05] = 0.0
    if self._only is not None:
      keep = np.zeros_like(scale)
      keep[self._only] = scale[self._only]
      scale = keep
    if np.any(scale) or np.any(self._done_scale):
      self._dones.batched_positions = self.roots + [0, 0, 0.5 * self.extent]
      self._dones.batched_scales = scale
    self._done_scale = scale

  def _place_selected(self) -> None:
    env = self.selected
    above = self.roots[env] + [0, 0, 0.55 * self.extent]
    self._marker.position = above
    self._label.position = above + [0, 0, 0.07 * self.extent]
    self._label.text = f"env {env}"

  @property
  def selected(self) -> int:
    return getattr(self, "_selected", 0)

  def select(self, env: int) -> None:
    """Mark ``env`` as the selected one (label and marker above it)."""
    self._selected = int(np.clip(env, 0, self.num_envs - 1))
    if self._only is not None:
      self.show_only(self._selected)
    self._place_selected()

  def show_only(self, env: Optional[int]) -> None:
    """Draw only ``env`` (None draws all)."""
    self._only = None if env is None else int(env)
    sel = self._envs()
    n = 1 if self._only is not None else self.num_envs
    with self._server.atomic():
      for body in self._fixed:
        pos = self.offsets[sel] + self._fixed_xpos[body.body_id]
        body.handle.batched_positions = pos
        body.handle.batched_wxyzs = np.tile(
            self._fixed_xquat[body.body_id], (n, 1))

  def shift(self, offset: np.ndarray) -> None:
    """Move the whole scene by ``offset`` (camera follow keeps a body centred)."""
    self._shift = np.asarray(offset, dtype=np.float64)
    self._frame.position = self._shift

  def remove(self) -> None:
    """Take every handle out of the scene."""
    self._frame.remove()
