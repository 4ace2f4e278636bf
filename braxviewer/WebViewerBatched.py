"""``WebViewerBatched``: a grid of training envs, live in the browser (the
original API)."""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import numpy as np

from braxviewer.protocol import Mode
from braxviewer.web import tiled
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
  """

  _default_title = "braxviewer"

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
      title: Optional[str] = None,
      record_dir: Optional[str] = None,
  ):
    if num_envs is None and grid_dims is not None:
      num_envs = int(np.prod(grid_dims))
    super().__init__(host, port, num_envs=num_envs, grid_dims=grid_dims,
                     env_offset=env_offset, mode=mode,
                     port_fallback=port_fallback, history=history, title=title,
                     record_dir=record_dir)

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
    from braxviewer import scene  # pylint: disable=import-outside-toplevel
    out = scene.concatenate_envs_xml(xml_string, num_envs, grid_dims,
                                     env_offset, assets)
    tiled.remember(xml_string, num_envs, assets)
    return out
