"""Offscreen frames of N envs with MuJoCo's renderer (``mujoco.Renderer``).

:func:`configure_gl` picks the OpenGL backend: what ``MUJOCO_GL`` says, else
EGL where an NVIDIA GPU is present, OSMesa (software) where Debian's
``libosmesa6`` is installed, else EGL (Mesa). :class:`GridRenderer` draws
any number of envs of the single compiled model into one image, one env at
a time into one scene:

* from ``qpos`` (and the mocap bodies' poses where the env put them),
  :meth:`GridRenderer.render_qpos` runs MuJoCo's kinematics per env, so
  bodies, sites and tendons are drawn as MuJoCo draws them;
* from body poses alone (:class:`braxviewer.scene.batched.Poses`: brax link poses),
  :meth:`GridRenderer.render` places geoms and sites from the bodies
  (tendons are not drawn: their paths need ``qpos``).

No JAX.
"""

from __future__ import annotations

import ctypes.util
import math
import os
import sys
from typing import Callable, Iterable, Optional, Sequence

import numpy as np

from braxviewer.scene.quat import to_matrix

_HEADLESS = ("egl", "osmesa")


def _wanted_backend() -> str:
  want = os.environ.get("MUJOCO_GL", "").strip().lower()
  if want:
    return want
  if os.path.exists("/dev/nvidiactl") or os.path.exists("/dev/nvidia0"):
    return "egl"
  if ctypes.util.find_library("OSMesa"):
    return "osmesa"
  return "egl"


def configure_gl() -> str:
  """Choose MuJoCo's offscreen GL backend; returns its name.

  Sets ``MUJOCO_GL`` when unset. Call it before ``mujoco`` is imported where
  possible; when it was imported already without a display, the backend is
  switched in place (MuJoCo would otherwise try GLFW, which needs one).
  """
  want = _wanted_backend()
  os.environ.setdefault("MUJOCO_GL", want)
  if "mujoco" not in sys.modules:
    return want
  from mujoco.rendering.classic import gl_context

  current = getattr(getattr(gl_context, "GLContext", None), "__module__", "")
  if want in _HEADLESS and not current.startswith(f"mujoco.{want}"):
    if want == "osmesa":
      from mujoco.osmesa import GLContext
    else:
      from mujoco.egl import GLContext
    gl_context.GLContext = GLContext
  return want


class GridRenderer:
  """Renders N envs of one model into RGB images.

  Args:
    model: the single-env ``mujoco.MjModel`` (changed: offscreen size).
    num_envs: envs drawn per image.
    width, height: image size in pixels.
    draft: a quick look (the page's clips): no shadows, reflections or
      multisampling, which cost most of a frame in software OpenGL.

  Raises:
    RuntimeError: when no OpenGL context can be made (with what to install).
  """

  def __init__(
    self, model, num_envs: int, width: int, height: int, draft: bool = False
  ):
    configure_gl()
    import mujoco

    self._mj = mujoco
    self.model = model
    self.num_envs = int(num_envs)
    vis = model.vis.global_
    vis.offwidth = max(int(vis.offwidth), int(width))
    vis.offheight = max(int(vis.offheight), int(height))
    per_env = model.ngeom + model.nsite + 2 * model.nwrap + 8
    quality = model.vis.quality
    samples = int(quality.offsamples)
    if draft:  # read once, as the context is made
      quality.offsamples = 0
    try:
      self._renderer = mujoco.Renderer(
        model, int(height), int(width), max_geom=max(1000, per_env * num_envs)
      )
    except Exception as err:
      raise RuntimeError(
        f"MuJoCo could not open an offscreen OpenGL context"
        f" (MUJOCO_GL={os.environ.get('MUJOCO_GL')}: {type(err).__name__}:"
        f" {err}). On a machine without a GPU install OSMesa (Debian:"
        " apt-get install libosmesa6) and set MUJOCO_GL=osmesa; with an"
        " NVIDIA GPU use MUJOCO_GL=egl."
      ) from None
    finally:
      quality.offsamples = samples
    if draft:
      flags = self._renderer.scene.flags
      flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
      flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
    self._data = mujoco.MjData(model)
    self._qpos_option = mujoco.MjvOption()  # MuJoCo's defaults
    self._option = mujoco.MjvOption()  # body poses only: no tendon paths
    self._option.flags[mujoco.mjtVisFlag.mjVIS_TENDON] = 0
    light = model.vis.headlight  # brighter than MuJoCo's dim default
    light.ambient[:] = np.maximum(light.ambient, 0.35)
    light.diffuse[:] = np.maximum(light.diffuse, 0.65)
    mocap = np.flatnonzero(model.body_mocapid >= 0)
    order = model.body_mocapid[mocap]
    self._mocap_pos0 = np.zeros((model.nmocap, 3))
    self._mocap_quat0 = np.zeros((model.nmocap, 4))
    self._mocap_pos0[order] = model.body_pos[mocap]
    self._mocap_quat0[order] = model.body_quat[mocap]
    self._pert = mujoco.MjvPerturb()
    self._geom_rot = to_matrix(model.geom_quat)
    self._site_rot = to_matrix(model.site_quat)
    self._planes = np.flatnonzero(
      (model.geom_type == mujoco.mjtGeom.mjGEOM_PLANE)
      & (model.geom_bodyid == 0)
    )
    self.camera = mujoco.MjvCamera()
    self.camera.type = mujoco.mjtCamera.mjCAMERA_FREE

  @property
  def scene(self):
    """The ``mujoco.MjvScene`` of the last image (what was drawn)."""
    if self._renderer is None:
      raise RuntimeError("GridRenderer.scene after close().")
    return self._renderer.scene

  def close(self) -> None:
    r = getattr(self, "_renderer", None)
    if r is not None:
      r.close()
      self._renderer = None

  def __enter__(self) -> "GridRenderer":
    return self

  def __exit__(self, *exc) -> None:
    self.close()

  def _pose_env(
    self, xpos: np.ndarray, xquat: np.ndarray, floor: np.ndarray
  ) -> None:
    """Fill the MjData with one env's body poses and what follows."""
    m, d = self.model, self._data
    xmat = to_matrix(xquat)
    d.xpos[:] = xpos
    d.xquat[:] = xquat
    d.xmat[:] = xmat.reshape(-1, 9)
    gb = m.geom_bodyid
    d.geom_xpos[:] = xpos[gb] + np.einsum("gij,gj->gi", xmat[gb], m.geom_pos)
    d.geom_xmat[:] = np.einsum(
      "gij,gjk->gik", xmat[gb], self._geom_rot
    ).reshape(-1, 9)
    if len(self._planes):
      d.geom_xpos[self._planes] = floor[None] + m.geom_pos[self._planes]
    if m.nsite:
      sb = m.site_bodyid
      d.site_xpos[:] = xpos[sb] + np.einsum("sij,sj->si", xmat[sb], m.site_pos)
      d.site_xmat[:] = np.einsum(
        "sij,sjk->sik", xmat[sb], self._site_rot
      ).reshape(-1, 9)
    if m.nlight:
      lb = m.light_bodyid
      d.light_xpos[:] = xpos[lb] + np.einsum(
        "lij,lj->li", xmat[lb], m.light_pos
      )
      d.light_xdir[:] = np.einsum("lij,lj->li", xmat[lb], m.light_dir)

  def render(
    self,
    xpos: np.ndarray,
    xquat: np.ndarray,
    envs: Optional[Sequence[int]] = None,
    floor: Optional[np.ndarray] = None,
  ) -> np.ndarray:
    """One ``(H, W, 3) uint8`` image.

    Args:
      xpos: ``(N, nbody, 3)`` world body positions (grid offsets included).
      xquat: ``(N, nbody, 4)`` world body orientations.
      envs: which of the N envs to draw (default: all).
      floor: where the world's ground planes go, once for all envs (None:
        the first drawn env's origin).
    """
    envs = list(range(len(xpos)) if envs is None else envs)
    ground = xpos[envs[0], 0] if floor is None else floor
    return self._draw(
      (lambda e=e: self._pose_env(xpos[e], xquat[e], ground) for e in envs),
      self._option,
    )

  def render_qpos(
    self,
    qpos: np.ndarray,
    offsets: np.ndarray,
    mocap_pos: Optional[np.ndarray] = None,
    mocap_quat: Optional[np.ndarray] = None,
    floor: Optional[np.ndarray] = None,
  ) -> np.ndarray:
    """One ``(H, W, 3) uint8`` image of envs posed from ``qpos``: bodies,
    sites and tendons as MuJoCo draws them.

    Args:
      qpos: ``(N, nq)`` each env's ``qpos``, in its own frame (non-finite:
        the env is drawn at ``qpos0``).
      offsets: ``(N, 3)`` where each env is drawn (its grid cell).
      mocap_pos, mocap_quat: ``(N, nmocap, 3)`` and ``(N, nmocap, 4)``
        (w, x, y, z) where the env put its mocap bodies; None (or
        non-finite): where the model puts them.
      floor: where the world's ground planes go, once for all envs (None:
        the first env's offset).
    """
    qpos = np.asarray(qpos, np.float64)
    offsets = np.asarray(offsets, np.float64)
    ground = offsets[0] if floor is None else np.asarray(floor, np.float64)

    def pose(e: int) -> None:
      self._pose_qpos(
        qpos[e],
        None if mocap_pos is None else mocap_pos[e],
        None if mocap_quat is None else mocap_quat[e],
        offsets[e],
        ground,
      )

    return self._draw(
      (lambda e=e: pose(e) for e in range(len(qpos))), self._qpos_option
    )

  def _pose_qpos(self, qpos, mocap_pos, mocap_quat, offset, ground) -> None:
    """Fill the MjData by MuJoCo's kinematics at ``qpos``, moved to
    ``offset``."""
    mj, m, d = self._mj, self.model, self._data
    d.qpos[:] = qpos if np.isfinite(qpos).all() else m.qpos0
    if m.nmocap:
      for value, default, out in (
        (mocap_pos, self._mocap_pos0, d.mocap_pos),
        (mocap_quat, self._mocap_quat0, d.mocap_quat),
      ):
        good = value is not None and np.isfinite(value).all()
        out[:] = value if good else default
    mj.mj_kinematics(m, d)
    mj.mj_comPos(m, d)
    mj.mj_camlight(m, d)
    if m.ntendon:
      mj.mj_tendon(m, d)
    for array in (
      d.xpos,
      d.xipos,
      d.geom_xpos,
      d.site_xpos,
      d.light_xpos,
      d.cam_xpos,
      d.subtree_com,
      d.wrap_xpos.reshape(-1, 3),
    ):
      array += offset
    if len(self._planes):
      d.geom_xpos[self._planes] = ground[None] + m.geom_pos[self._planes]

  def _draw(self, poses: Iterable[Callable[[], None]], option) -> np.ndarray:
    """Pose each env in turn (each callable fills the MjData) and add its
    geoms to one scene; render it."""
    mj = self._mj
    renderer = self._renderer
    if renderer is None:
      raise RuntimeError("GridRenderer.render() after close().")
    scene = renderer.scene
    first = True
    for pose in poses:
      pose()
      if first:
        renderer.update_scene(
          self._data, camera=self.camera, scene_option=option
        )
        first = False
      else:  # the ground is drawn once: hide it (alpha 0 is skipped)
        m = self.model
        planes = self._planes
        rgba, matid = m.geom_rgba[planes].copy(), m.geom_matid[planes].copy()
        m.geom_rgba[planes, 3] = 0.0
        m.geom_matid[planes] = -1
        try:
          mj.mjv_addGeoms(
            m,
            self._data,
            option,
            self._pert,
            mj.mjtCatBit.mjCAT_ALL.value,
            scene,
          )
        finally:
          m.geom_rgba[planes] = rgba
          m.geom_matid[planes] = matid
    self._add_backdrop(scene)
    return renderer.render()

  def _add_backdrop(self, scene) -> None:
    """A light, evenly lit wall behind everything the camera sees: MuJoCo
    clears to black where a model has no skybox (a dark video)."""
    mj = self._mj
    if scene.ngeom >= scene.maxgeom:
      return
    cam = self.camera
    az, el = math.radians(cam.azimuth), math.radians(cam.elevation)
    forward = np.array(
      [math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)]
    )
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= max(float(np.linalg.norm(right)), 1e-9)
    up = np.cross(right, forward)
    depth = 3.0 * float(cam.distance)  # behind the scene, seen from the camera
    half = 4.0 * depth * math.tan(math.radians(self.model.vis.global_.fovy))
    geom = scene.geoms[scene.ngeom]
    mj.mjv_initGeom(
      geom,
      mj.mjtGeom.mjGEOM_BOX,
      np.array([half, half, 1e-3 * depth]),
      np.asarray(cam.lookat) + forward * (depth - float(cam.distance)),
      np.stack([right, up, -forward], axis=1).ravel(),
      np.asarray(BACKDROP_RGBA, np.float32) * [0.46, 0.46, 0.46, 1.0],
    )
    # lit by the headlight straight on, plus this glow: about the colour
    geom.emission = 1.0
    scene.ngeom += 1


# The page's background, near enough (viser's default light theme).
BACKDROP_RGBA = (0.93, 0.94, 0.96, 1.0)


def look(
  camera, lookat: np.ndarray, distance: float, azimuth: float, elevation: float
) -> None:
  """Point a free ``MjvCamera``."""
  camera.lookat[:] = lookat
  camera.distance = float(distance)
  camera.azimuth = float(azimuth)
  camera.elevation = float(elevation)


PRESETS = {
  # name: (azimuth, elevation) in degrees
  "overview": (135.0, -30.0),
  "side": (90.0, -10.0),
  "front": (180.0, -10.0),
  "top": (90.0, -89.0),
  "follow": (90.0, -15.0),
}


def frame_distance(extent: float, fovy_deg: float = 45.0) -> float:
  """Camera distance that fits a sphere of radius ``extent`` in view."""
  return max(extent, 1e-3) / math.tan(math.radians(fovy_deg) / 2) * 1.1
