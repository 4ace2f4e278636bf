"""``WebViewerBatched``: a grid of training envs, live in the browser (the
original API, with its tiled models)."""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional, Sequence

import mujoco
import numpy as np

from braxviewer.core.protocol import Mode, StreamInfo
from braxviewer.scene import batched as scene
from braxviewer.scene import tiled
from braxviewer.web.playback import Poser
from braxviewer.web.server import Token
from braxviewer.web.viewer import WebViewerBase

__all__ = ["WebViewerBatched"]


class WebViewerBatched(WebViewerBase):
  """Shows the first N training envs on a grid in a browser page.

  Args:
    num_envs: envs to stream; None takes ``prod(grid_dims)`` when given, else
      lets the trainer choose (min(16, envs per device)).
    grid_dims: ``(columns, rows, layers)``; None: a near-square grid.
    env_offset: spacing ``(x, y, z)`` between envs; None: from the model size.
    host: interface to serve on (``"0.0.0.0"``: the network, with a warning).
    port: TCP port; 0 picks a free one.
    mode: initial streaming mode, ``"off"``, ``"live"`` or ``"sync"``.
    port_fallback: take the next free port when ``port`` is busy.
    history: chunks per source kept in memory for the page's timeline
      (scrub back during training, then *Live*).
    title: the page's panel title.
    record_dir: also record the stream to this directory (replay with
      ``python -m braxviewer replay DIR``, export with ``... export DIR``).
    token: who may open the page: ``"auto"`` needs the printed token only
      when serving beyond loopback (see ``WebViewerBase``).
    layout: ``"auto"`` (default): envs overlaid on one world for a mobile
      robot on terrain (a heightfield, stairs: the world drawn once, every
      env where it is), else a grid; ``"grid"`` or ``"overlay"`` to choose.
      ``viewer.layout`` says which is drawn.
    info_keys: the ``state.info`` entries to stream (e.g. ``("command",)``);
      None lets the trainer choose (numeric per-env entries, at most 16
      numbers per env, ``command`` first); ``()`` streams none.

  A model that already holds several envs (made by
  :meth:`concatenate_envs_xml`, the original usage) is recognised: one made
  here is mapped back to its single env; any other is drawn as it is, its
  copies filled with the first streamed envs.
  """

  def __init__(
    self,
    num_envs: Optional[int] = None,
    grid_dims: Optional[Sequence[int]] = None,
    env_offset: Optional[Sequence[float]] = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    mode: "Mode | str" = Mode.LIVE,
    port_fallback: bool = False,
    history: int = 64,
    title: str = "braxviewer",
    record_dir: Optional[str] = None,
    token: Token = "auto",
    layout: str = "auto",
    info_keys: Optional[Iterable[str]] = None,
  ):
    if num_envs is None and grid_dims is not None:
      num_envs = int(np.prod(grid_dims))
    self._tiled_copies = 1  # > 1: the model holds this many envs itself
    super().__init__(
      host,
      port,
      num_envs=num_envs,
      grid_dims=grid_dims,
      env_offset=env_offset,
      mode=mode,
      port_fallback=port_fallback,
      history=history,
      title=title,
      record_dir=record_dir,
      token=token,
      layout=layout,
      info_keys=info_keys,
    )

  @staticmethod
  def concatenate_envs_xml(
    xml_string: str,
    num_envs: int,
    grid_dims: Optional[Sequence[int]] = None,
    env_offset: Optional[Sequence[float]] = None,
    assets: Optional[Mapping[str, Any]] = None,
  ) -> str:
    """One MJCF holding ``num_envs`` copies of ``xml_string`` on a grid.

    Kept for the original usage; ``viewer.init`` now takes the single-env
    model and lays out the grid itself (a model built from this XML is
    recognised and mapped back to the single env).
    """
    out = scene.concatenate_envs_xml(
      xml_string, num_envs, grid_dims, env_offset, assets
    )
    tiled.remember(xml_string, num_envs, assets)
    return out

  # -- tiled models ----------------------------------------------------------------

  def _model_to_draw(self, model: mujoco.MjModel) -> mujoco.MjModel:
    single, copies = tiled.untile(model)
    if copies > 1:
      # The original usage: the single env it was made from, on our grid
      # (the same picture, with env selection and follow). Quietly.
      if self.num_envs is None:
        self.num_envs = copies
      return single
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
    self._tiled_copies = prefixed
    return model

  def _envs_for(self, info: StreamInfo) -> Optional[int]:
    model = self._model
    if not model:
      return super()._envs_for(info)
    copies = tiled.copies_by_width(model, info.nq)
    if copies == 1:
      return super()._envs_for(info)
    if copies != self._tiled_copies:
      self._warn(
        "tiled-width",
        f"braxviewer: the model given to viewer.init() holds"
        f" {copies} envs side by side (nq={model.nq}, one env streams"
        f" nq={info.nq}). braxviewer draws it as one scene and fills its"
        f" {copies} copies with the first {min(copies, info.num_envs)}"
        " streamed envs; env selection is off. Pass the single-env model to"
        " viewer.init() to get the full grid features.",
      )
      self._tiled_copies = copies
      self._stale = True
    return 1

  def _poser(self, num_envs: int) -> Poser:
    if self._tiled_copies > 1 and self._model is not None:
      return tiled.TiledPoses(
        scene.BatchedScene(self._model, 1), self._tiled_copies
      )
    return super()._poser(num_envs)
