"""The original API's tiled models, as the web viewer draws them.

The original usage built one MJCF holding every env
(``WebViewerBatched.concatenate_envs_xml``) and passed its model to
``viewer.init``. :class:`TiledModels` decides how such a model is drawn: one
made by ``concatenate_envs_xml`` is mapped back to its single env (then the
viewer lays out its own grid, quietly); any other model of several envs
side by side (bodies ``e0/``, ``e1/``...; or a qpos width that is a multiple
of the streamed one) is drawn as it is, its copies filled with the first
streamed envs, with one warning. No JAX.
"""

from __future__ import annotations

from typing import Callable, Optional, Tuple

import mujoco

from braxviewer.core.protocol import StreamInfo
from braxviewer.scene import tiled
from braxviewer.scene.batched import BatchedScene
from braxviewer.web.playback import Poser


class TiledModels:
  """How a model given to ``viewer.init`` is drawn, when it holds several
  envs.

  Args:
    warn: ``warn(key, message)``, each key once.
  """

  def __init__(self, warn: Callable[[str, str], None]):
    self._warn = warn
    self.copies = 1  # > 1: the drawn model holds this many envs itself
    self.stale = False  # the drawn envs must be rebuilt, even at one count

  def to_draw(self, model: mujoco.MjModel) -> Tuple[mujoco.MjModel, int]:
    """The model to draw for ``model`` and, for a model made by
    ``concatenate_envs_xml``, its env count (else 0)."""
    single, copies = tiled.untile(model)
    if copies > 1:
      # the original usage: its single env on our grid (the same picture,
      # with env selection and follow); quietly
      self.copies = 1
      return single, copies
    prefixed = tiled.prefixed_copies(model)
    if prefixed > 1:
      self._warn(
        "tiled-names",
        f"braxviewer: viewer.init() got a model of {prefixed} envs laid out"
        f" in one scene (bodies e0/..e{prefixed - 1}/). braxviewer draws it"
        " as it is, filled with the first streamed envs; env selection and"
        " the grid options are off. Pass the single-env env to"
        " viewer.init() for the full grid features.",
      )
    self.copies = prefixed
    return model, 0

  def envs_for(self, model: mujoco.MjModel, info: StreamInfo) -> Optional[int]:
    """1 when ``model`` holds the streamed env several times side by side
    (drawn as one scene), else None (an ordinary model)."""
    copies = tiled.copies_by_width(model, info.nq)
    if copies == 1:
      return None
    if copies != self.copies:
      self._warn(
        "tiled-width",
        f"braxviewer: the model given to viewer.init() holds"
        f" {copies} envs side by side (nq={model.nq}, one env streams"
        f" nq={info.nq}). braxviewer draws it as one scene and fills its"
        f" {copies} copies with the first {min(copies, info.num_envs)}"
        " streamed envs; env selection is off. Pass the single-env model to"
        " viewer.init() to get the full grid features.",
      )
      self.copies = copies
      self.stale = True
    return 1

  def poser(self, model: mujoco.MjModel) -> Optional[Poser]:
    """The pose engine of a tiled model (None: an ordinary model)."""
    if self.copies <= 1:
      return None
    return tiled.TiledPoses(BatchedScene(model, 1), self.copies)
