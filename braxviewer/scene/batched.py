"""The batched scene: N copies of one MuJoCo model on a grid, and their world
poses from streamed frames.

:class:`BatchedScene` turns a frame chunk (``qpos`` or brax link poses) into
:class:`Poses`: world positions and orientations of every body of every env,
grid offset included, in the single model's body indexing (body 0, the world,
sits at the env's offset). That is what renderers take, e.g.
``mjviser.ViserMujocoScene(server, scene.single_model, num_envs=N)
.update_from_arrays(poses.xpos[t], poses.xmat()[t])``. A frame with NaN or
inf marks only its env invalid (``valid`` False, rest pose drawn) and never
raises. :attr:`BatchedScene.batched_model` is the N-env MuJoCo model itself
(MuJoCo's viewer, video), built from :func:`concatenate_envs_xml`.

numpy + mujoco only, no JAX.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from typing import Optional, Sequence, Tuple, Union

import mujoco
import numpy as np

from braxviewer.core.frames import FrameChunk
from braxviewer.scene import grid, grid_xml, source
from braxviewer.scene.grid import default_env_offset, grid_offsets
from braxviewer.scene.grid_xml import concatenate_envs_xml
from braxviewer.scene.kinematics import BatchKinematics
from braxviewer.scene.layout import choose_layout
from braxviewer.scene.lookup import find_mj_model
from braxviewer.scene.quat import to_matrix

__all__ = [
  "BatchedScene",
  "Poses",
  "concatenate_envs_xml",
  "default_env_offset",
  "grid_offsets",
]

ModelSource = Union[mujoco.MjModel, mujoco.MjSpec, str, os.PathLike]


@dataclasses.dataclass(frozen=True)
class Poses:
  """World poses of every body of N envs, over any leading (frame) axes.

  Attributes:
    xpos: ``(..., N, nbody, 3)`` world positions, grid offset included;
      single-model body indexing (body 0, the world, is the env's offset).
    xquat: ``(..., N, nbody, 4)`` world orientations (w, x, y, z).
    valid: ``(..., N)`` False where the env's frame held NaN/inf (or gave a
      non-finite pose); such an env shows its rest pose.
  """

  xpos: np.ndarray
  xquat: np.ndarray
  valid: np.ndarray

  def xmat(self) -> np.ndarray:
    """``(..., N, nbody, 3, 3)`` world rotation matrices."""
    return to_matrix(self.xquat)


def _source_of_compiled(origin, assets, model_dir) -> source.SourceModel:
  """The N-env model's source for an env or an ``MjModel``: an XML of its
  structure that takes the compiled values (what the env simulates)."""
  try:
    return source.source_from_any(origin, assets, model_dir)
  except ValueError as err:
    raise ValueError(
      f"batched_model needs the model's XML: {err} Build BatchedScene from"
      " the env itself (a MuJoCo Playground env brings its xml_path and"
      " model_assets), or from the XML text or file path (with"
      " assets=/model_dir= for meshes) instead of an MjModel."
    ) from None


class BatchedScene:
  """N copies of one model on a grid, posed from streamed frames.

  Args:
    model: the single-env model: an ``MjModel`` (e.g. ``env.sys.mj_model``),
      the env itself (brax or MuJoCo Playground: its compiled model is
      drawn, its XML and in-memory assets build :attr:`batched_model`), an
      ``MjSpec``, MJCF text or an MJCF file path.
    num_envs: number of envs drawn, >= 1.
    grid_dims: ``(nx, ny[, nz])`` covering ``num_envs``; None: near-square.
    env_offset: spacing ``(dx, dy, dz)`` (m); None: from the model's size.
    assets: file name -> contents for includes, meshes and textures (XML).
    model_dir: directory holding the files the XML refers to.
    layout: ``"grid"`` (a cell per env), ``"overlay"`` (every env where it
      is: offsets 0, for envs sharing one world) or ``"auto"`` (overlay for
      a mobile robot on terrain, else grid; see :mod:`braxviewer.scene.layout`).
      :attr:`layout` holds the choice.

  Raises:
    ValueError: bad ``num_envs``, ``grid_dims``, ``env_offset``, ``layout``,
      or a model MuJoCo cannot load (with MuJoCo's message).
  """

  def __init__(
    self,
    model: ModelSource,
    num_envs: int,
    grid_dims: Optional[Sequence[int]] = None,
    env_offset=None,
    assets: Optional[source.Assets] = None,
    *,
    model_dir=None,
    layout: str = "auto",
  ):
    self.num_envs: int = grid.check_num_envs(num_envs)
    self.grid_dims: grid.GridDims = grid.resolve_grid_dims(
      self.num_envs, grid_dims
    )
    if env_offset is not None:
      grid.check_env_offset(env_offset)
    self._source: Optional[source.SourceModel] = None
    self._origin = (model, assets, model_dir)  # builds batched_model
    if isinstance(model, mujoco.MjModel):
      compiled = model
    elif isinstance(model, (mujoco.MjSpec, str, os.PathLike)):
      compiled = None
    else:  # an env
      compiled = find_mj_model(model)
    if compiled is not None:
      self.single_model: mujoco.MjModel = compiled
    else:
      self._source = source.source_from_any(model, assets, model_dir)
      self.single_model = self._source.model
    single = self.single_model
    self.layout: str = choose_layout(single, layout, env_offset)
    if self.layout == "overlay":
      self.env_offset: np.ndarray = np.zeros(3)
    elif env_offset is None:
      self.env_offset = default_env_offset(single)
    else:
      self.env_offset = grid.check_env_offset(env_offset)
    self.offsets: np.ndarray = grid_offsets(
      self.num_envs, self.grid_dims, self.env_offset
    )
    self._qpos_shifts = grid_xml.qpos_shifts(single, self.offsets)
    self._kinematics = BatchKinematics(single, self.num_envs)
    rest = mujoco.MjData(single)
    mujoco.mj_kinematics(single, rest)
    self._rest_xpos = rest.xpos.copy()
    self._rest_xquat = rest.xquat.copy()
    mocap = single.body_mocapid
    self._mocap_bodies = np.argsort(np.where(mocap >= 0, mocap, np.inf))[
      : single.nmocap
    ]
    self._mocap0 = (rest.mocap_pos.copy(), rest.mocap_quat.copy())
    self._batched: Optional[mujoco.MjModel] = None
    self._batched_lock = threading.Lock()

  @property
  def nbody(self) -> int:
    """Bodies of one env, the world included."""
    return int(self.single_model.nbody)

  @property
  def batched_model(self) -> mujoco.MjModel:
    """The N-env model (:func:`concatenate_envs_xml` layout), built on first
    use: every copy is :attr:`single_model` as compiled (sizes, colours,
    materials an env set in code included). Feed it :meth:`batched_qpos` to
    show streamed frames.

    Raises:
      ValueError: for an ``MjModel`` given alone whose XML MuJoCo no longer
        holds (pass the env, or the XML).
    """
    with self._batched_lock:
      if self._batched is None:
        if self._source is None:
          self._source = _source_of_compiled(*self._origin)
        build = grid_xml.build_batched(
          self._source, self.num_envs, self.grid_dims, self.env_offset
        )
        self._batched = build.model
      return self._batched

  def batched_qpos(self, qpos: np.ndarray) -> np.ndarray:
    """``qpos (..., N, nq)`` -> ``(..., N * nq)`` for :attr:`batched_model`
    (free-joint positions moved to their env's grid cell)."""
    qpos = self._check_qpos(qpos)
    shifted = qpos + self._qpos_shifts
    return shifted.reshape(qpos.shape[:-2] + (-1,))

  # -- poses -------------------------------------------------------------------

  def _check_qpos(self, qpos) -> np.ndarray:
    qpos = np.asarray(qpos, dtype=np.float64)
    nq = self.single_model.nq
    if qpos.ndim < 2 or qpos.shape[-1] != nq or qpos.shape[-2] != self.num_envs:
      raise ValueError(
        f"qpos has shape {qpos.shape}; this scene needs (..., {self.num_envs},"
        f" {nq}): {self.num_envs} envs of the model's {nq} generalized"
        " positions. Stream the same model the scene was built from, and"
        " build the scene with num_envs equal to the streamed envs."
      )
    return qpos

  def _finish(
    self, xpos: np.ndarray, xquat: np.ndarray, valid: np.ndarray, lead
  ) -> Poses:
    """Fill invalid envs with the rest pose, add offsets, restore shape."""
    valid = (
      valid & np.isfinite(xpos).all((-1, -2)) & np.isfinite(xquat).all((-1, -2))
    )
    if not valid.all():
      bad = ~valid
      xpos[bad] = self._rest_xpos
      xquat[bad] = self._rest_xquat
    xpos += self.offsets[:, None, :]
    shape = tuple(lead) + (self.num_envs, self.nbody)
    return Poses(
      xpos.reshape(shape + (3,)),
      xquat.reshape(shape + (4,)),
      valid.reshape(tuple(lead) + (self.num_envs,)),
    )

  def _check_mocap(self, value, width: int, lead, name: str) -> np.ndarray:
    """``value`` as ``(frames, N, nmocap, width)`` float64."""
    a = np.asarray(value, dtype=np.float64)
    nmocap = int(self.single_model.nmocap)
    want = tuple(lead) + (self.num_envs, nmocap, width)
    if a.shape != want:
      raise ValueError(
        f"{name} has shape {a.shape}; this scene needs {want}: the leading"
        f" axes of qpos, then {self.num_envs} envs of the model's {nmocap}"
        f" mocap bodies ({'positions' if width == 3 else 'quaternions'})."
        " Stream the same model the scene was built from."
      )
    return a.reshape((-1,) + want[-3:])

  def poses_from_qpos(
    self,
    qpos: np.ndarray,
    mocap_pos: Optional[np.ndarray] = None,
    mocap_quat: Optional[np.ndarray] = None,
  ) -> Poses:
    """World poses from ``qpos (..., N, nq)`` (mjx / generalized frames).

    Args:
      qpos: ``(..., N, nq)`` generalized positions.
      mocap_pos: ``(..., N, nmocap, 3)`` positions of the mocap bodies in
        each env's own frame (``data.mocap_pos``, as streamed), or None:
        the model's own mocap pose.
      mocap_quat: ``(..., N, nmocap, 4)`` their orientations (w, x, y, z),
        or None: the model's.

    A frame with NaN or inf in any of them marks only its env invalid.

    Raises:
      ValueError: when the last two axes of ``qpos`` are not ``(num_envs,
        nq)``, or the mocap arrays do not match it and the model.
    """
    qpos = self._check_qpos(qpos)
    lead = qpos.shape[:-2]
    flat = qpos.reshape((-1,) + qpos.shape[-2:])
    valid = np.asarray(np.isfinite(flat).all(-1))
    mocap = [
      None if a is None else self._check_mocap(a, width, lead, name)
      for a, width, name in (
        (mocap_pos, 3, "mocap_pos"),
        (mocap_quat, 4, "mocap_quat"),
      )
    ]
    for a in mocap:
      if a is not None:
        valid &= np.isfinite(a).all((-1, -2))
    if not valid.all():
      flat = np.where(valid[..., None], flat, self.single_model.qpos0)
      mocap = [
        None if a is None else np.where(valid[..., None, None], a, a0)
        for a, a0 in zip(mocap, self._mocap0)
      ]
    xpos, xquat = self._kinematics(flat, *mocap)
    return self._finish(xpos, xquat, valid, lead)

  def poses_from_links(
    self, link_pos: np.ndarray, link_rot: np.ndarray
  ) -> Poses:
    """World poses from brax link poses (positional / spring backends).

    Args:
      link_pos: ``(..., N, L, 3)`` link positions (``pipeline_state.x.pos``).
      link_rot: ``(..., N, L, 4)`` link orientations, (w, x, y, z).
        brax's L links are the model's bodies 1..nbody-1, in order.

    Raises:
      ValueError: when the shapes do not match the model and each other.
    """
    pos = np.asarray(link_pos, dtype=np.float64)
    rot = np.asarray(link_rot, dtype=np.float64)
    links = self.nbody - 1
    want = (self.num_envs, links)
    if (
      pos.ndim < 3
      or rot.ndim < 3
      or pos.shape[-3:] != want + (3,)
      or rot.shape[-3:] != want + (4,)
      or pos.shape[:-3] != rot.shape[:-3]
    ):
      raise ValueError(
        f"link poses have shapes {pos.shape} and {rot.shape}; this scene"
        f" needs (..., {self.num_envs}, {links}, 3) and (...,"
        f" {self.num_envs}, {links}, 4): {self.num_envs} envs of the"
        f" model's {links} links (bodies 1..{links}), positions and"
        " (w, x, y, z) quaternions with the same leading axes."
      )
    lead = pos.shape[:-3]
    frames = int(np.prod(lead, dtype=int))
    xpos = np.zeros((frames, self.num_envs, self.nbody, 3))
    xquat = np.zeros((frames, self.num_envs, self.nbody, 4))
    xquat[..., 0, 0] = 1.0
    xpos[:, :, 1:] = pos.reshape((frames,) + want + (3,))
    xquat[:, :, 1:] = rot.reshape((frames,) + want + (4,))
    valid = np.asarray(
      np.isfinite(xpos).all((-1, -2)) & np.isfinite(xquat).all((-1, -2))
    )
    return self._finish(xpos, xquat, valid, lead)

  def poses(self, chunk: FrameChunk) -> Poses:
    """World poses of every frame of a chunk: ``(T, N, nbody, ...)``, the
    mocap bodies where the chunk's ``mocap_pos``/``mocap_quat`` put them
    (qpos chunks; link poses hold every body already)."""
    if chunk.qpos is not None:
      return self.poses_from_qpos(chunk.qpos, chunk.mocap_pos, chunk.mocap_quat)
    # A chunk holds qpos or both link arrays (FrameChunk checks it).
    assert chunk.link_pos is not None and chunk.link_rot is not None
    return self.poses_from_links(chunk.link_pos, chunk.link_rot)

  def mocap_arrays(self, poses: Poses) -> Tuple[np.ndarray, np.ndarray]:
    """Poses of the mocap bodies, ``(..., N, nmocap, 3)`` and ``(..., N,
    nmocap, 4)`` in mocap id order: what mjviser's ``update_from_arrays``
    takes as ``mocap_pos, mocap_quat`` (it draws mocap bodies from those, not
    from ``xpos``). World poses, grid offset included: where the streamed
    ``mocap_pos``/``mocap_quat`` put them (each env's own goal), or the
    model's default mocap pose for poses made without them."""
    bodies = self._mocap_bodies
    return poses.xpos[..., bodies, :], poses.xquat[..., bodies, :]

  def rest_poses(self) -> Poses:
    """Poses of every env at ``qpos0``: ``(N, nbody, ...)``."""
    return self.poses_from_qpos(
      np.tile(self.single_model.qpos0, (self.num_envs, 1))
    )
