"""The web viewer: a :class:`~braxviewer.core.protocol.TrainingViewer` in the browser.

:class:`WebViewerBase` only implements the trainer's protocol and wires the
parts: a ``FanOut`` sends the stream to the page's ``LiveFeed`` (it leads)
and to a recorder; the feed fills the ``Player``; the ``Playback`` thread
plays it on the ``Page``, posed by a ``BatchedScene``. A fault of the page
or the server turns the viewer off with one warning; training goes on.
"""

from __future__ import annotations

import threading
from typing import Any, Iterable, Mapping, Optional, Sequence, Tuple

import mujoco
import numpy as np

from braxviewer.core.fanout import FanOut
from braxviewer.core.frames import FrameChunk
from braxviewer.core.protocol import (
  Mode,
  StreamInfo,
  check_info_keys,
  check_num_envs,
)
from braxviewer.record import Recorder
from braxviewer.scene.batched import BatchedScene
from braxviewer.scene.layout import check_layout
from braxviewer.scene.lookup import resolve_model
from braxviewer.viewer.push import Pushing
from braxviewer.web.feed import LiveFeed
from braxviewer.web.host import PageHost
from braxviewer.web.pacing import Player
from braxviewer.web.panels import Status
from braxviewer.web.playback import Poser
from braxviewer.web.server import Route, Token

_BUILD_WAIT_S = 10.0  # init() waits this long for the page to show a model


class WebViewerBase(PageHost, Pushing):
  """Streams the first N training envs to a browser page while PPO trains.

  Args:
    host: interface to serve on. ``"0.0.0.0"`` serves the network (with a
      printed warning: the page has no authentication).
    port: TCP port (0: any free port).
    num_envs: envs to stream and draw (None: the trainer chooses).
    grid_dims: ``(columns, rows, layers)`` of the grid of envs.
    env_offset: spacing between envs in the grid, ``(x, y, z)`` metres.
    layout: ``"grid"`` (a cell per env), ``"overlay"`` (every env where it
      is, the shared world drawn once) or ``"auto"`` (overlay for a mobile
      robot on terrain, else grid); :attr:`layout` says what is drawn.
    mode: initial streaming mode: ``"off"``, ``"live"`` or ``"sync"``.
    port_fallback: take the next free port when ``port`` is busy (otherwise
      a clear error names the busy port).
    history: chunks per source kept in memory for the page's timeline
      (scrub back, replay them, then *Live* to follow training again).
    title: the page's panel title.
    record_dir: also record what this viewer receives to this directory
      (see :meth:`record`); replay it with ``python -m braxviewer replay``.
    token: who may open the page. ``"auto"`` (default): anyone on this
      machine when serving on loopback; beyond it, only who has the random
      token printed with the URL. A string sets the token; False serves the
      network without one (with a warning).
    info_keys: the ``state.info`` entries to stream (e.g. ``("command",)``);
      None lets the trainer choose (numeric per-env entries, at most 16
      numbers per env, ``command`` first); ``()`` streams none.

  A Python training loop streams with ``push(state)`` and ``log(...)``
  (see :class:`~braxviewer.viewer.push.Pushing`) instead of ``ppo.train``.

  Under ``pmap`` or ``jax.distributed``, set :attr:`stream_source` to
  ``(process, local_device)`` to watch another device's envs (no
  recompile); a viewer server's page has controls for it (docs/server.md).

  The page's controls are Python's too: :attr:`page` (env selection,
  follow, camera) and :attr:`playback` (timeline, pause, speed, source).
  """

  def __init__(
    self,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    num_envs: Optional[int] = None,
    grid_dims: Optional[Sequence[int]] = None,
    env_offset: Optional[Sequence[float]] = None,
    mode: "Mode | str" = Mode.LIVE,
    port_fallback: bool = False,
    history: int = 64,
    title: str = "braxviewer",
    record_dir: Optional[str] = None,
    token: Token = "auto",
    layout: str = "auto",
    info_keys: Optional[Iterable[str]] = None,
  ):
    self.num_envs = check_num_envs(num_envs)
    self.info_keys: Optional[Tuple[str, ...]] = check_info_keys(info_keys)
    # (process, local device) to stream from; settable at any time, read by
    # the trainer between device calls (None: process 0, device 0)
    self.stream_source: Optional[Tuple[int, int]] = None
    check_layout(layout, env_offset)
    super().__init__(
      host,
      port,
      port_fallback=port_fallback,
      title=title,
      player=Player(history=history),
      token=token,
    )
    self._layout = layout
    self.grid_dims = (
      None if grid_dims is None else tuple(int(d) for d in grid_dims)
    )
    self.env_offset = (
      None if env_offset is None else tuple(float(v) for v in env_offset)
    )
    self._model: Optional[mujoco.MjModel] = None
    self._streamed_envs = 0  # envs per chunk of the running stream
    self._stale = False  # rebuild the drawn envs even at the same count
    self._failed: Optional[str] = None
    self._recorder: Optional[Recorder] = None
    self._feed = LiveFeed(
      self.playback.player,
      mode=Mode.parse(mode),
      ready=self._ready,
      on_start=self._stream_started,
      on_progress=self._progress,
      pages=self.clients,
      on_orphaned=self._orphaned,
    )
    self._stream = FanOut(self._feed, lead=self._feed)
    if record_dir is not None:
      self.record(record_dir)

  # -- lifecycle -----------------------------------------------------------------

  def run(self) -> "WebViewerBase":
    """Start the web server in the background and print the page's URL."""
    if self.page is None:
      page = self._serve(
        stream=self,
        mode=self._feed.wanted.value,
        num_envs=self._envs_guess(),
        routes=self._routes(),
      )
      page.add_export_button(
        self._save_clip,
        "Save clip",
        "An MP4 of the timeline: the followed env, else the grid.",
      )
      if self._model is not None:
        self._show(self._envs_guess())
    return self

  def init(self, env: Any) -> "WebViewerBase":
    """Set what to draw: a brax env, a MuJoCo Playground env, MJCF XML or an
    MjModel. Starts the server if :meth:`run` was not called."""
    resolved = resolve_model(env)
    model = self._model_to_draw(resolved)
    self._model = model
    self._stream.init(env if model is resolved else model)  # the recorder
    self.pushes.note_env(env)  # its dt for push()
    if self.page is None:
      self.run()
    else:
      done = threading.Event()

      def show() -> None:
        self._show(self._envs_guess())
        done.set()

      self.playback.call_soon(show)
      done.wait(_BUILD_WAIT_S if self.playback.running else 0.0)
    return self

  def record(self, path: str, **options: Any) -> Recorder:
    """Also record what this viewer receives to ``path`` (a new directory),
    from now on; returns the :class:`~braxviewer.record.Recorder`.
    ``options`` go to the Recorder (``max_bytes=``, ``mode=``, ...)."""
    recorder = Recorder(path, **options)
    old, self._recorder = self._recorder, recorder
    if old is not None:
      self._stream.remove(old)
      old.close()
    self._stream.add(recorder)  # gets the model and the stream's info
    return recorder

  def close(self) -> None:
    """Stop the viewer thread and the server; training is not affected."""
    self.pushes.close()  # a pushed stream's last frames, then its end
    self._stream.close()  # the recorder
    super().close()

  # -- TrainingViewer: through the FanOut ----------------------------------------

  def requested_envs(self) -> Optional[int]:
    return (
      self.num_envs
      if self.num_envs is not None
      else (self._stream.requested_envs())
    )

  @property
  def mode(self) -> Mode:
    return self._stream.mode

  def on_stream_start(self, info: StreamInfo) -> None:
    self._stream.on_stream_start(info)

  def on_chunk(self, chunk: FrameChunk) -> None:
    self._stream.on_chunk(chunk)

  def on_progress(self, env_steps: int, metrics: Mapping[str, float]) -> None:
    self._stream.on_progress(env_steps, metrics)

  def on_trainer_mode(self, mode: Mode) -> None:
    self._stream.on_trainer_mode(mode)

  def on_stream_end(self) -> None:
    self._stream.on_stream_end()

  def on_phase(self, phase: str) -> None:
    self._stream.on_phase(phase)

  # -- the stream's controls -----------------------------------------------------

  def set_mode(self, mode: "Mode | str") -> None:
    """Switch the streaming mode; the trainer picks it up within ~1 s."""
    wanted = self._feed.wanted = Mode.parse(mode)
    if wanted != Mode.SYNC:
      self.playback.player.release_all()
    if self.page is not None:
      self.page.show_mode(wanted.value)

  @property
  def failed(self) -> Optional[str]:
    """Why the viewer turned itself off, or None."""
    return self._failed

  def _video_model(self) -> Optional[mujoco.MjModel]:
    return self._model

  def _stream_stats(self) -> dict:
    return self._feed.stats()

  # -- wiring --------------------------------------------------------------------

  def _ready(self) -> bool:
    return (
      not self._closed
      and self._failed is None
      and self._model is not None
      and self.playback.running
    )

  def _envs_guess(self) -> int:
    if self._streamed_envs:
      return self._streamed_envs
    if self.num_envs:
      return self.num_envs
    return int(np.prod(self.grid_dims)) if self.grid_dims else 16

  def _stream_started(self, info: StreamInfo) -> None:
    if self._model is None:
      self._warn(
        "no-model",
        "braxviewer: viewer.init(env) was not called"
        " before training, so there is nothing to draw; streaming"
        " stays off.",
      )
      return
    n = self._envs_for(info)
    if n is None:
      return
    self._streamed_envs = n
    if n != (self.page.num_envs if self.page else 0) or self._stale:
      self.playback.call_soon(lambda: self._show(n))

  def _show(self, num_envs: int) -> None:
    if self._model is not None:
      self._stale = False
      self._show_envs(self._poser(num_envs))

  def _progress(self, env_steps: int, metrics: Mapping[str, float]) -> None:
    if self.page is not None:
      self.page.add_progress(env_steps, metrics)

  def _status(self) -> Status:
    return self._feed.status(
      self.stats(), self.playback.player, has_model=self._model is not None
    )

  def _interrupted(self) -> None:
    self._feed.interrupt()

  def _orphaned(self) -> None:
    if self.page is not None:
      self.page.show_mode("live")
    self._warn(
      "orphaned",
      "braxviewer: sync needs an open page (it paces training for someone"
      " watching); no page was open for 5 s, so streaming falls back to live"
      " and training goes on. Switch to sync in the page again.",
    )

  def _on_fail(self, reason: str, warned: bool) -> None:
    if self._failed:
      return
    self._failed = reason
    self.playback.player.release_all()
    if not warned:
      self._warn(
        "fail",
        f"braxviewer: {reason} The viewer is off for the"
        " rest of this run; training goes on.",
      )

  def _routes(self) -> Optional[Mapping[str, Route]]:
    """Websocket paths of our own on the page's port (the viewer server's
    training socket); None here."""
    return None

  # -- what to draw (WebViewerBatched adds the original API's tiled models) ------

  def _model_to_draw(self, model: mujoco.MjModel) -> mujoco.MjModel:
    return model

  def _envs_for(self, info: StreamInfo) -> Optional[int]:
    """Envs to draw for a stream, or None (it cannot be drawn)."""
    model = self._model
    if model is not None and info.nq is not None and info.nq != model.nq:
      self._warn(
        "nq",
        f"braxviewer: the trainer streams qpos of width {info.nq} but"
        f" the model given to viewer.init() has nq={model.nq}; pass the env"
        " you train to viewer.init(). Streaming stays off.",
      )
      self._failed = "model mismatch"
      return None
    return int(info.num_envs)

  def _poser(self, num_envs: int) -> Poser:
    assert self._model is not None
    return BatchedScene(
      self._model,
      num_envs,
      self.grid_dims,
      self.env_offset,
      layout=self._layout,
    )
