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
import tempfile
import threading
from typing import Optional, Sequence, Tuple, Union

import mujoco
import numpy as np
from viser.transforms import SO3

from braxviewer import grid, grid_xml
from braxviewer.frames import FrameChunk
from braxviewer.grid import default_env_offset, grid_offsets
from braxviewer.grid_xml import concatenate_envs_xml
from braxviewer.kinematics import BatchKinematics

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
    return SO3(np.asarray(self.xquat, np.float64)).as_matrix()


def _model_from_last_xml(model: mujoco.MjModel) -> grid_xml.SourceModel:
  """MuJoCo keeps the XML of the last model it loaded; use it when it is
  this model's (brax and Playground load their env's XML last)."""
  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "model.xml")
    try:
      mujoco.mj_saveLastXML(path, model)
      source = grid_xml.load_source(path)
    except (ValueError, mujoco.FatalError) as err:
      raise ValueError(
        "batched_model needs the model's XML, and MuJoCo no longer holds it"
        f" for this MjModel ({str(err).strip()}). Build BatchedScene from"
        " the XML text or file path (with assets=/model_dir= for meshes)"
        " instead of an MjModel."
      ) from None
  source.file_dir = None
  return source


class BatchedScene:
  """N copies of one model on a grid, posed from streamed frames.

  Args:
    model: the single-env model: an ``MjModel`` (e.g. ``env.sys.mj_model``),
      an ``MjSpec``, MJCF text or an MJCF file path.
    num_envs: number of envs drawn, >= 1.
    grid_dims: ``(nx, ny[, nz])`` covering ``num_envs``; None: near-square.
    env_offset: spacing ``(dx, dy, dz)`` (m); None: from the model's size.
    assets: file name -> contents for includes, meshes and textures (XML).
    model_dir: directory holding the files the XML refers to.

  Raises:
    ValueError: bad ``num_envs``, ``grid_dims``, ``env_offset``, or a model
      MuJoCo cannot load (with MuJoCo's message).
  """

  def __init__(
    self,
    model: ModelSource,
    num_envs: int,
    grid_dims: Optional[Sequence[int]] = None,
    env_offset=None,
    assets: Optional[grid_xml.Assets] = None,
    *,
    model_dir=None,
  ):
    self.num_envs: int = grid.check_num_envs(num_envs)
    self.grid_dims: grid.GridDims = grid.resolve_grid_dims(
      self.num_envs, grid_dims
    )
    if env_offset is not None:
      grid.check_env_offset(env_offset)
    self._source: Optional[grid_xml.SourceModel] = None
    if isinstance(model, mujoco.MjModel):
      self.single_model: mujoco.MjModel = model
    else:
      self._source = grid_xml.source_from_any(model, assets, model_dir)
      self.single_model = self._source.model
    single = self.single_model
    self.env_offset: np.ndarray = (
      default_env_offset(single)
      if env_offset is None
      else grid.check_env_offset(env_offset)
    )
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
    self._batched: Optional[mujoco.MjModel] = None
    self._batched_lock = threading.Lock()

  @property
  def nbody(self) -> int:
    """Bodies of one env, the world included."""
    return int(self.single_model.nbody)

  @property
  def batched_model(self) -> mujoco.MjModel:
    """The N-env model (:func:`concatenate_envs_xml` layout), built on first
    use. Feed it :meth:`batched_qpos` to show streamed frames."""
    with self._batched_lock:
      if self._batched is None:
        if self._source is None:
          self._source = _model_from_last_xml(self.single_model)
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

  def poses_from_qpos(self, qpos: np.ndarray) -> Poses:
    """World poses from ``qpos (..., N, nq)`` (mjx / generalized frames).

    Raises:
      ValueError: when the last two axes are not ``(num_envs, nq)``.
    """
    qpos = self._check_qpos(qpos)
    lead = qpos.shape[:-2]
    flat = qpos.reshape((-1,) + qpos.shape[-2:])
    valid = np.asarray(np.isfinite(flat).all(-1))
    if not valid.all():
      flat = np.where(valid[..., None], flat, self.single_model.qpos0)
    xpos, xquat = self._kinematics(flat)
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
    """World poses of every frame of a chunk: ``(T, N, nbody, ...)``."""
    if chunk.qpos is not None:
      return self.poses_from_qpos(chunk.qpos)
    # A chunk holds qpos or both link arrays (FrameChunk checks it).
    assert chunk.link_pos is not None and chunk.link_rot is not None
    return self.poses_from_links(chunk.link_pos, chunk.link_rot)

  def mocap_arrays(self, poses: Poses) -> Tuple[np.ndarray, np.ndarray]:
    """Poses of the mocap bodies, ``(..., N, nmocap, 3)`` and ``(..., N,
    nmocap, 4)`` in mocap id order: what mjviser's ``update_from_arrays``
    takes as ``mocap_pos, mocap_quat`` (it draws mocap bodies from those, not
    from ``xpos``). Streams carry no mocap state: these are the model's."""
    bodies = self._mocap_bodies
    return poses.xpos[..., bodies, :], poses.xquat[..., bodies, :]

  def rest_poses(self) -> Poses:
    """Poses of every env at ``qpos0``: ``(N, nbody, ...)``."""
    return self.poses_from_qpos(
      np.tile(self.single_model.qpos0, (self.num_envs, 1))
    )
