"""``WebViewer``: one training env, live in the browser (the original API)."""

from __future__ import annotations

from typing import Iterable, Optional

from braxviewer.core.protocol import Mode
from braxviewer.web.server import Token
from braxviewer.web.viewer import WebViewerBase

__all__ = ["WebViewer"]


class WebViewer(WebViewerBase):
  """Shows the first training env in a browser page while PPO trains.

  ``viewer.run()`` starts the server and prints the URL, ``viewer.init(env)``
  sets the model, then pass ``viewer=viewer`` to braxviewer's ``ppo.train``.

  Args:
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
    layout: ``"auto"``, ``"grid"`` or ``"overlay"``: with one env, only
      whether a terrain is drawn as the shared world (see
      ``WebViewerBatched``).
    info_keys: the ``state.info`` entries to stream (e.g. ``("command",)``);
      None lets the trainer choose (numeric per-env entries, at most 16
      numbers per env, ``command`` first); ``()`` streams none.
  """

  def __init__(
    self,
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
    super().__init__(
      host,
      port,
      num_envs=1,
      mode=mode,
      port_fallback=port_fallback,
      history=history,
      title=title,
      record_dir=record_dir,
      token=token,
      layout=layout,
      info_keys=info_keys,
    )
