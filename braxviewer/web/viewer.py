"""The in-process web backend: :class:`WebViewerBatched` and :class:`WebViewer`.

A :class:`~braxviewer.viewer.base.Viewer` whose parts are composed and
exposed: its :class:`~braxviewer.web.host.PageHost` (:attr:`host`: the
server, the :attr:`page` and the :attr:`playback` thread), a ``FanOut``
that sends the stream to the page's ``LiveFeed`` (it leads) and to a
recorder, the feed filling the ``Player``, a ``BatchedScene`` posing it,
and the :class:`~braxviewer.viewer.push.Pusher` (:attr:`pushes`). A fault of
the page or the server turns the viewer off with one warning; training
goes on. The original API's models of several envs are drawn through
:class:`~braxviewer.web.tiled_models.TiledModels`.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

import mujoco
import numpy as np

from braxviewer.core.fanout import FanOut
from braxviewer.core.frames import FrameChunk
from braxviewer.core.protocol import Mode, StreamInfo
from braxviewer.record import Recorder
from braxviewer.scene import batched as scene
from braxviewer.scene import tiled
from braxviewer.scene.batched import BatchedScene
from braxviewer.scene.layout import check_layout
from braxviewer.scene.lookup import resolve_model
from braxviewer.viewer.base import Viewer
from braxviewer.web.feed import LiveFeed
from braxviewer.web.host import PageHooks, PageHost, ShowsPage
from braxviewer.web.pacing import Counters, Player
from braxviewer.web.panels import Status
from braxviewer.web.playback import Poser
from braxviewer.web.server import Route, Token
from braxviewer.web.tiled_models import TiledModels

_BUILD_WAIT_S = 10.0  # init() waits this long for the page to show a model


class WebViewerBatched(Viewer, ShowsPage):
  """Shows the first N training envs in a browser page while they train.

  ``viewer.run()`` serves the page and prints its URL, ``viewer.init(env)``
  sets the model; pass ``viewer=viewer`` to braxviewer's ``ppo.train`` or
  ``sac.train``, wrap a loop with ``braxviewer.wrap``, or ``push`` states.

  Args:
    num_envs: envs to stream and draw; None takes ``prod(grid_dims)`` when
      given, else lets the trainer choose (min(16, envs per device)).
    grid_dims: ``(columns, rows, layers)``; None: a near-square grid.
    env_offset: spacing ``(x, y, z)`` between envs; None: from the model.
    host: interface to serve on (``"0.0.0.0"``: the network, with a token).
    port: TCP port (0: any free port).
    mode: initial streaming mode, ``"off"``, ``"live"`` or ``"sync"``.
    port_fallback: take the next free port when ``port`` is busy (else a
      clear error names the busy port).
    history: chunks per source kept in memory for the page's timeline
      (scrub back, replay them, then *Live* to follow training again).
    title: the page's panel title.
    record_dir: also record the stream to this directory (see
      :meth:`record`; replay with ``python -m braxviewer replay DIR``).
    token: who may open the page. ``"auto"`` (default): anyone on this
      machine when serving on loopback; beyond it, only who has the random
      token printed with the URL. A string sets the token; False serves the
      network without one (with a warning).
    layout: ``"auto"`` (default): envs overlaid on one world for a mobile
      robot on terrain (the world drawn once, every env where it is), else a
      grid; ``"grid"`` or ``"overlay"`` to choose; :attr:`layout` says which
      is drawn.
    info_keys: the ``state.info`` entries to stream (e.g. ``("command",)``);
      None lets the trainer choose (numeric per-env entries, at most 16
      numbers per env, ``command`` first); ``()`` streams none.
    routes: websocket paths of our own on the page's port (a viewer
      server's training socket).
    curves: draw the progress this viewer receives as training curves
      (False: its owner draws them, e.g. one line per run).
    keep_open: at :meth:`close` (or when the script ends), keep the page
      up until Ctrl-C or the page's *Close the viewer*: after training, the
      timeline, *Save clip* and *Live* keep working. :meth:`wait` does
      the same at once.

  Its parts are Python's too: :attr:`page` (env selection, follow,
  camera), :attr:`playback` (timeline, pause, speed, source), :attr:`host`
  (the server) and :attr:`pushes`. Under ``pmap`` or ``jax.distributed``,
  set :attr:`stream_source` to ``(process, local_device)`` to watch another
  device's envs (no recompile).

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
    routes: Optional[Mapping[str, Route]] = None,
    curves: bool = True,
    keep_open: bool = False,
  ):
    self.keep_open = bool(keep_open)
    if num_envs is None and grid_dims is not None:
      num_envs = int(np.prod(grid_dims))
    super().__init__(num_envs, info_keys)
    check_layout(layout, env_offset)
    self.host = PageHost(
      host,
      port,
      port_fallback=port_fallback,
      title=title,
      player=Player(history=history),
      token=token,
      hooks=PageHooks(
        status=self._status,
        stream_stats=lambda: self._feed.stats(),
        on_fail=self._on_fail,
        interrupted=lambda: self._feed.interrupt(),
        close=self.close,
      ),
    )
    self._layout = layout
    self._routes = routes
    self._curves = bool(curves)
    self.grid_dims = (
      None if grid_dims is None else tuple(int(d) for d in grid_dims)
    )
    self.env_offset = (
      None if env_offset is None else tuple(float(v) for v in env_offset)
    )
    self._model: Optional[mujoco.MjModel] = None
    self._streamed_envs = 0  # envs per chunk of the running stream
    self._failed: Optional[str] = None
    self._recorder: Optional[Recorder] = None
    self._tiled = TiledModels(self.warn)
    self._feed = LiveFeed(
      self.playback.player,
      mode=Mode.parse(mode),
      ready=lambda: self.ready,
      on_start=self._stream_started,
      on_progress=self._progress,
      pages=self.host.clients,
      on_orphaned=self._orphaned,
    )
    self._stream = FanOut(self._feed, lead=self._feed)
    if record_dir is not None:
      self.record(record_dir)

  @staticmethod
  def concatenate_envs_xml(
    xml_string: str,
    num_envs: int,
    grid_dims: Optional[Sequence[int]] = None,
    env_offset: Optional[Sequence[float]] = None,
    assets: Optional[Mapping[str, Any]] = None,
  ) -> str:
    """One MJCF holding ``num_envs`` copies of ``xml_string`` on a grid.

    Kept for the original usage; ``viewer.init`` takes the single-env model
    and lays out the grid itself (a model built from this XML is
    recognised and mapped back to the single env).
    """
    out = scene.concatenate_envs_xml(
      xml_string, num_envs, grid_dims, env_offset, assets
    )
    tiled.remember(xml_string, num_envs, assets)
    return out

  # -- the parts ------------------------------------------------------------------

  @property
  def warn(self):
    """``warn(key, message)``: one warning per key."""
    return self.host.warn

  @property
  def layout(self) -> str:
    """How the envs are drawn: ``"grid"`` or ``"overlay"`` once a model is
    drawn, the option given before."""
    return self.host.drawn_layout(self._layout)

  @property
  def failed(self) -> Optional[str]:
    """Why the viewer turned itself off, or None."""
    return self._failed

  @property
  def ready(self) -> bool:
    """The page can show chunks now (running, a model drawn, not failed)."""
    return (
      not self._closed
      and self._failed is None
      and self._model is not None
      and self.playback.running
    )

  @property
  def wanted_mode(self) -> Mode:
    """The mode the page (or :meth:`set_mode`) asks for."""
    return self._feed.wanted

  # -- lifecycle ------------------------------------------------------------------

  def run(self) -> "WebViewerBatched":
    """Start the web server in the background and print the page's URL."""
    if self.page is None:
      page = self.host.serve(
        stream=self,
        mode=self._feed.wanted.value,
        num_envs=self._envs_guess(),
        routes=self._routes,
      )
      page.add_export_button(
        self.save_clip,
        "Save clip",
        "An MP4 of the timeline: the followed env, else the grid.",
      )
      if self._model is not None:
        self._show(self._envs_guess())
    return self

  def _on_init(self, env: Any) -> None:
    resolved = resolve_model(env)
    model, copies = self._tiled.to_draw(resolved)
    if copies and self.num_envs is None:
      self.num_envs = copies
    self._model = model
    self._stream.init(env if model is resolved else model)  # the recorder
    if self.page is None:
      self.run()
    else:
      done = threading.Event()

      def show() -> None:
        self._show(self._envs_guess())
        done.set()

      self.playback.call_soon(show)
      done.wait(_BUILD_WAIT_S if self.playback.running else 0.0)

  def save_clip(self, client: Any) -> None:
    """The page's *Save clip* (``client``: the page that asked): an MP4 of
    what the timeline holds, the followed env, else the grid."""
    self.host.save_clip(client, self._model)

  def take_run(self, connected: Callable[[], bool], **facts: Any) -> None:
    """Show another run's state and count its frames afresh (a viewer
    server switched runs): ``connected()`` says whether it is heard;
    ``facts`` are :meth:`LiveFeed.show_run
    <braxviewer.web.feed.LiveFeed.show_run>`'s."""
    self._feed.show_run(**facts)
    self._feed.connected = connected
    play = self.playback
    play.player.counters = Counters()
    play.shown.clear()
    play.latency.clear()

  @property
  def empty_note(self) -> str:
    """What the status says while there is no model to draw."""
    return self._feed.empty_note

  @empty_note.setter
  def empty_note(self, note: str) -> None:
    self._feed.empty_note = note

  def expect_envs(self, num_envs: int) -> None:
    """Draw ``num_envs`` envs at the next :meth:`init` (before a stream
    says how many; 0: the viewer's own guess)."""
    self._streamed_envs = int(num_envs)

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

  def wait(self, say: bool = True) -> None:
    """Keep the page up until Ctrl-C or its *Close the viewer* button,
    then close (after training: scrub, replay, save clips); ``say``:
    print where the page is and how to quit."""
    self.pushes.close()  # a pushed stream ends here (its last frames first)
    self._end_stream()
    self.host.hold(say=say)
    self.close()

  def _end_stream(self) -> None:
    """The user is done streaming (``wait``, ``close``): a stream nobody
    ended (a ``wrap`` loop's) ends here, so the page says so."""
    feed = self._feed
    if feed.started and not feed.ended:
      self._stream.on_stream_end()

  def _on_close(self) -> None:
    if self.keep_open:
      self._end_stream()
      self.host.hold()
    self._stream.close()  # the recorder
    self.host.close()

  # -- the trainer's protocol: through the FanOut ---------------------------------

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

  # -- the stream's controls ------------------------------------------------------

  def set_mode(self, mode: "Mode | str") -> None:
    """Switch the streaming mode; the trainer picks it up within ~1 s."""
    wanted = self._feed.wanted = Mode.parse(mode)
    if wanted != Mode.SYNC:
      self.playback.player.release_all()
    if self.page is not None:
      self.page.show_mode(wanted.value)

  # -- wiring ---------------------------------------------------------------------

  def _envs_guess(self) -> int:
    if self._streamed_envs:
      return self._streamed_envs
    if self.num_envs:
      return self.num_envs
    return int(np.prod(self.grid_dims)) if self.grid_dims else 16

  def _stream_started(self, info: StreamInfo) -> None:
    if self._model is None:
      self.warn(
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
    if n != (self.page.num_envs if self.page else 0) or self._tiled.stale:
      self.playback.call_soon(lambda: self._show(n))

  def _show(self, num_envs: int) -> None:
    if self._model is not None:
      self._tiled.stale = False
      self.host.show_envs(self._poser(num_envs))

  def _progress(self, env_steps: int, metrics: Mapping[str, float]) -> None:
    if self.page is not None and self._curves:
      self.page.add_progress(env_steps, metrics)

  def _status(self) -> Status:
    return self._feed.status(
      self.stats(), self.playback.player, has_model=self._model is not None
    )

  def _orphaned(self) -> None:
    if self.page is not None:
      self.page.show_mode("live")
    self.warn(
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
      self.warn(
        "fail",
        f"braxviewer: {reason} The viewer is off for the"
        " rest of this run; training goes on.",
      )

  def _envs_for(self, info: StreamInfo) -> Optional[int]:
    """Envs to draw for a stream, or None (it cannot be drawn)."""
    model = self._model
    if model is None:
      return int(info.num_envs)
    tiled_envs = self._tiled.envs_for(model, info)
    if tiled_envs is not None:
      return tiled_envs
    if info.nq is not None and info.nq != model.nq:
      self.warn(
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
    tiled_poses = self._tiled.poser(self._model)
    if tiled_poses is not None:
      return tiled_poses
    return BatchedScene(
      self._model,
      num_envs,
      self.grid_dims,
      self.env_offset,
      layout=self._layout,
    )


class WebViewer(WebViewerBatched):
  """One training env in the browser (the original API): a
  :class:`WebViewerBatched` of one env, which takes the same keyword
  arguments but the grid's (``num_envs``, ``grid_dims``, ``env_offset``).
  """

  def __init__(self, host: str = "127.0.0.1", port: int = 8000, **options):
    super().__init__(1, host=host, port=port, **options)


# The name the web backend had before it was composed (kept for old imports).
WebViewerBase = WebViewerBatched
