"""A served page and the thread that plays frames on it.

:class:`PageHost` is the part the live viewer, the replay viewer and the
viewer server each hold (composed, not inherited): the web server
(:mod:`server`), the :class:`~braxviewer.web.page.Page` and the
:class:`~braxviewer.web.playback.Playback` that paces it, started and
stopped together, the envs drawn from a pose engine, and videos made for
a page. What the owner adds is said through explicit hooks
(:class:`PageHooks`). No JAX.
"""

from __future__ import annotations

import atexit
import concurrent.futures.thread as pool_threads  # its exit hook first
import contextlib
import dataclasses
import sys
import threading
from typing import Any, Callable, Dict, Mapping, Optional

from braxviewer.core.interrupts import InterruptWatch
from braxviewer.core.timeline import ChunkSequence
from braxviewer.web.clip import (
  Place,
  Render,
  VideoJobs,
  clip_size,
  page_size,
  render_page_clip,
)
from braxviewer.web.errors import WarnOnce
from braxviewer.web.frame_rates import PageRates
from braxviewer.web.pacing import Player
from braxviewer.web.page import Page
from braxviewer.web.panels import Status, StreamControls
from braxviewer.web.playback import Playback, Poser
from braxviewer.web.server import Route, Token, WebServer, check_port

# How to close the viewers of the hosts not closed yet, by host id: called
# when the main thread ends.
_open_hosts: Dict[int, Callable[[], None]] = {}
_exit_hook: list = []  # holds True once the hook below is registered


def _program_threads_run() -> bool:
  """Whether a thread of the program's own (not a daemon, not a thread pool's
  worker) outlives the main thread, e.g. a training thread."""
  main = threading.main_thread()
  pools = getattr(pool_threads, "_threads_queues", {})  # worker -> queue
  return any(
    t is not main and not t.daemon and t.is_alive() and t not in pools
    for t in threading.enumerate()
  )


def _close_when_main_ends() -> None:
  """Close the hosts a script left open, quietly, as its main thread ends.

  Python stops its thread pools (``concurrent.futures``) as the main thread
  ends, before any ``atexit`` handler runs; viser's pool is one, while its
  server thread (a daemon) still serves the open pages. The next thing a page
  does (a message, or its disconnect as the server stops) then fails in the
  server ("cannot schedule new futures after shutdown"). Closing the hosts
  here, before the pools stop, ends the pages as ``close()`` does. A thread
  of the program's own that runs on keeps its viewer: then ``atexit`` closes
  it, after that thread.
  """
  if _program_threads_run():
    return
  for close in reversed(list(_open_hosts.values())):
    with contextlib.suppress(Exception, KeyboardInterrupt):  # exiting anyway
      close()


def _watch_exit(host: "PageHost", close: Callable[[], None]) -> None:
  """Have ``close`` (the viewer of ``host``) called at exit: as the main
  thread ends (see :func:`_close_when_main_ends`), else by ``atexit``."""
  _open_hosts[id(host)] = close
  atexit.register(close)
  register = getattr(threading, "_register_atexit", None)  # Python's own
  if register is None or _exit_hook:
    return
  with contextlib.suppress(RuntimeError):  # the interpreter exits already
    # Run last first, so before the pools' hook (registered on import).
    register(_close_when_main_ends)
    _exit_hook.append(True)


_COUNTERS = (
  "chunks_received",
  "frames_received",
  "chunks_dropped",
  "frames_dropped",
  "frames_shown",
  "chunks_skipped",
)


def _no_status() -> Status:
  return Status()


def _no_stats() -> dict:
  return dict(received_per_s=0.0, env_steps=0, env_steps_per_s=0.0)


@dataclasses.dataclass(frozen=True)
class PageHooks:
  """What the viewer that owns a page tells it.

  Attributes:
    status: the status panel's content now.
    stream_stats: what a live stream adds to :meth:`PageHost.stats`.
    on_fail: ``on_fail(reason, warned)``: the viewer thread gave up (None:
      one warning that the page is off).
    interrupted: Ctrl-C reached the process (from a helper thread).
    close: the owner's close, called when a script ends without it (None:
      the host's own :meth:`PageHost.close`); it must close the host.
  """

  status: Callable[[], Status] = _no_status
  stream_stats: Callable[[], dict] = _no_stats
  on_fail: Optional[Callable[[str, bool], None]] = None
  interrupted: Callable[[], None] = lambda: None
  close: Optional[Callable[[], None]] = None


class PageHost:
  """Serves a page and plays a player's frames on it.

  Args:
    host: interface to serve on (see :class:`~braxviewer.web.server.WebServer`).
    port: TCP port (0: any free port).
    port_fallback: take the next free port when ``port`` is busy.
    title: the page's panel title.
    player: what to play.
    token: who may open the page (see :class:`~braxviewer.web.server.WebServer`):
      ``"auto"`` needs a token only beyond loopback.
    hooks: what the owner adds (:class:`PageHooks`).
  """

  def __init__(
    self,
    host: str,
    port: int,
    *,
    port_fallback: bool,
    title: str,
    player: Player,
    token: Token = "auto",
    hooks: PageHooks = PageHooks(),
  ):
    self.host = host
    self.port = check_port(port)
    self.token = token
    self.port_fallback = bool(port_fallback)
    self.title = title
    self.hooks = hooks
    self.warn = WarnOnce()  # each kind of warning once
    self.rates = PageRates()  # how fast the open pages draw
    self.playback = Playback(
      player,
      status=lambda: self.hooks.status(),
      on_fail=self._on_fail,
      note=self._note,
      warn=self.warn,
      max_fps=self.rates.fastest,
    )
    self.page: Optional[Page] = None
    self._web: Optional[WebServer] = None
    self.closed = False
    self._interrupts = InterruptWatch(lambda: self.hooks.interrupted())
    self.videos = VideoJobs(self._video_place)  # one at a time

  # -- lifecycle -----------------------------------------------------------------

  def serve(
    self,
    *,
    stream: Optional[StreamControls],
    mode: str,
    num_envs: int,
    recorded: Optional[ChunkSequence] = None,
    routes: Optional[Mapping[str, Route]] = None,
  ) -> Page:
    """Start the server, the page and the viewer thread; print the URL.
    ``routes``: websocket paths of our own on the page's port."""
    if self.closed:
      raise RuntimeError("This viewer was closed; make a new one.")
    web = self._web = WebServer(
      self.host,
      self.port,
      self.port_fallback,
      label=self.title,
      on_fault=self._fault,
      token=self.token,
      on_frames=self.rates.report,
      routes=routes,
    )
    self.port = web.port
    page = self.page = Page(
      web.server,
      stream=stream,
      timeline=self.playback,
      mode=mode,
      num_envs=num_envs,
      title=self.title,
      recorded=recorded,
      warn=self.warn,
      on_page_gone=self.playback.page_gone,
      on_page_open=self.playback.page_opened,
    )
    self.playback.start(page, health=self._health, pages=self.clients)
    self._interrupts.start()
    # A script that never calls close() gets a quiet close at exit (before
    # viser's own stop, registered earlier: atexit runs the last first),
    # as its main thread ends where it can (see _close_when_main_ends).
    _watch_exit(self, self.hooks.close or self.close)
    print(f"braxviewer: viewer running at {self.url}", flush=True)
    return page

  def hold(self, offer_quit: bool = True, say: bool = True) -> None:
    """Serve the page until Ctrl-C or, with ``offer_quit``, its *Close the
    viewer* button (after training: the timeline, *Save clip* and *Live*
    keep working); returns then, without closing. Returns at once when
    nothing is served. ``say``: print where the page is and how to quit."""
    page = self.page
    if page is None or not self.serving:
      return
    quit_ = threading.Event()
    if offer_quit:
      page.panels.offer_quit(quit_.set)
    if say:
      print(
        f"braxviewer: the page stays up at {self.url}; Ctrl-C to quit"
        + (" (or *Close the viewer* in the page)." if offer_quit else "."),
        file=sys.stderr,
        flush=True,
      )
    try:
      while self.serving and not quit_.wait(0.25):
        pass
    except KeyboardInterrupt:
      print(file=sys.stderr, flush=True)  # after the ^C the terminal echoed
    finally:
      with contextlib.suppress(Exception):
        page.panels.offer_quit(None)

  def close(self) -> None:
    """Stop the viewer thread and the server; training is not affected."""
    if self.closed:
      return
    self.closed = True
    atexit.unregister(self.hooks.close or self.close)
    _open_hosts.pop(id(self), None)
    self._interrupts.stop()
    self.videos.cancel()
    self.playback.stop()
    if self._web is not None:
      self._web.stop()

  @property
  def url(self) -> Optional[str]:
    """The page's address once running."""
    return None if self._web is None else self._web.url

  def drawn_layout(self, option: str) -> str:
    """How the envs are drawn: ``"grid"`` or ``"overlay"`` once a model is
    drawn (see :mod:`braxviewer.scene.layout`), else ``option``."""
    view = self.page.view if self.page is not None else None
    return view.layout if view is not None else option

  @property
  def serving(self) -> bool:
    """The server and the viewer thread run."""
    return self._web is not None and self._web.alive() and self.playback.running

  def stats(self) -> dict:
    """Counters and rates shown in the status panel (for tests, benches)."""
    c, play, page = self.playback.player.counters, self.playback, self.page
    return dict(
      **{name: getattr(c, name) for name in _COUNTERS},
      shown_per_s=play.shown.rate(),
      latency_s=play.latency.mean(),
      update_s=page.update_seconds.mean() if page else None,
      clients=self.clients(),
      triangles=page.triangles if page else 0,
      **self.hooks.stream_stats(),
    )

  def clients(self) -> int:
    """Browser pages connected now."""
    web = self._web
    return len(web.server.get_clients()) if web and web.alive() else 0

  # -- the drawn envs ------------------------------------------------------------

  def show_envs(self, poser: Poser) -> None:
    """Draw ``poser``'s envs at rest and pose chunks with it from now on
    (on the viewer thread, or before it plays anything)."""
    if self.page is None:
      return
    rest = poser.rest_poses()
    layout = getattr(poser, "layout", "grid")  # tiled models: one scene
    self.page.build(
      poser.single_model, poser.offsets, rest.xpos, rest.xquat, layout
    )
    self.playback.set_poser(poser)

  # -- videos for a page ----------------------------------------------------------

  def _note(self) -> str:
    progress = self.videos.progress
    return "" if progress is None else f" · _making a video… {progress:.0%}_"

  def _video_place(self) -> Optional[Place]:
    page, web = self.page, self._web
    panel = None if page is None else page.panels.timeline
    button = getattr(panel, "export", None)
    if web is None or panel is None or button is None:
      return None
    return Place(web.server.gui, panel.folder, float(button.order))

  def save_clip(self, client: Any, model: Any) -> None:
    """The live page's *Save clip*: a quick MP4 of what the timeline holds
    (:func:`~braxviewer.web.clip.render_page_clip`), the followed env with
    the follow camera, else every env on the grid, drawn with ``model``
    (None: nothing to draw yet), of the page's aspect."""
    page = self.page
    timeline = self.playback.timeline  # a snapshot: training goes on
    if model is None or page is None or not len(timeline):
      if client is not None:
        client.add_notification("No video", "Nothing received yet.")
      return
    env, grid = page.selected_env, not page.following
    steps = timeline.env_steps
    name = ("grid" if grid else f"env{env}") + (
      f"_steps{int(steps.min())}-{int(steps.max())}.mp4"
    )

    size = clip_size(*page_size(client))

    def render(out: str, on_frame: Callable, stopped: Callable) -> None:
      render_page_clip(
        timeline,
        model,
        out,
        env=env,
        grid=grid,
        size=size,
        on_frame=on_frame,
        stopped=stopped,
      )

    self.send_video(client, name, render)

  def send_video(self, client: Any, name: str, render: Render) -> None:
    """Make a video in a worker thread (``render(path, on_frame,
    stopped)``) and hand it to ``client``'s browser as a download; the
    timeline's status line and a progress bar show how far it is, a
    *Cancel video* button stops it, a failure shows in that page."""
    if client is not None:
      self.videos.start(client, name, render)

  def _on_fail(self, reason: str, warned: bool) -> None:
    if self.hooks.on_fail is not None:
      self.hooks.on_fail(reason, warned)
    elif not warned:
      self.warn("fail", f"braxviewer: {reason} The page is off.")

  def _fault(self, message: str) -> None:
    self.warn("socket", f"braxviewer: {message}")

  def _health(self) -> Optional[str]:
    web = self._web
    if web is None or web.alive():
      return None
    why = f" ({web.death})" if web.death else ""
    return f"the web server stopped unexpectedly{why}; the page is gone."


class ShowsPage:
  """The parts of a page, on whatever holds a :class:`PageHost` as
  ``host`` (the live viewer, the replay viewer, the viewer server): the
  same names everywhere, each the host's own; and ``with owner:`` (its
  ``run()``, then its ``close()``)."""

  host: PageHost
  # Whether the page may end the program (not a viewer server's page: it
  # serves every run and everyone who may watch).
  quit_button = True

  def run(self) -> Any:
    raise NotImplementedError  # the owner's: serve the page

  def close(self) -> None:
    raise NotImplementedError  # the owner's: stop it

  def stop(self) -> None:
    """The same as ``close()`` (the original API's name)."""
    self.close()

  def wait(self, say: bool = True) -> None:
    """Keep the page up until Ctrl-C or its *Close the viewer* button,
    then close (after training: scrub the timeline, replay, save clips);
    ``say``: print where the page is and how to quit."""
    self.host.hold(self.quit_button, say)
    self.close()

  def __enter__(self) -> Any:
    return self.run()

  def __exit__(self, *exc: Any) -> None:
    self.close()

  @property
  def page(self) -> Optional[Page]:
    """The page's widgets and scene (None before ``run()``)."""
    return self.host.page

  @property
  def playback(self) -> Playback:
    """The viewer thread: timeline, pause, speed, source."""
    return self.host.playback

  @property
  def url(self) -> Optional[str]:
    """The page's address once running."""
    return self.host.url

  @property
  def port(self) -> int:
    """The page's TCP port (the one taken, once running)."""
    return self.host.port

  @property
  def serving(self) -> bool:
    """The server and the viewer thread run."""
    return self.host.serving

  def stats(self) -> dict:
    """Counters and rates shown in the status panel (for tests, benches)."""
    return self.host.stats()

  def clients(self) -> int:
    """Browser pages connected now."""
    return self.host.clients()
