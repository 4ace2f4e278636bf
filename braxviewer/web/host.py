"""A served page and the thread that plays frames on it.

:class:`PageHost` is what the live viewer and the replay viewer share: the
web server (:mod:`server`), the :class:`~braxviewer.web.page.Page` and the
:class:`~braxviewer.web.playback.Playback` that paces it, started together
and stopped together, and the envs drawn from a pose engine. No JAX.
"""

from __future__ import annotations

import atexit
import concurrent.futures.thread as pool_threads  # its exit hook first
import contextlib
import os
import tempfile
import threading
from typing import Any, Callable, Dict, Mapping, Optional

import numpy as np

from braxviewer.core.interrupts import InterruptWatch
from braxviewer.core.timeline import ChunkSequence
from braxviewer.record.export import render_clip
from braxviewer.web.errors import WarnOnce
from braxviewer.web.frame_rates import PageRates
from braxviewer.web.pacing import Player
from braxviewer.web.page import Page
from braxviewer.web.panels import Status, StreamControls
from braxviewer.web.playback import Playback, Poser
from braxviewer.web.server import Route, Token, WebServer, check_port

# Hosts not closed yet, by id: closed when the main thread ends.
_open_hosts: Dict[int, "PageHost"] = {}
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
  for host in reversed(list(_open_hosts.values())):
    with contextlib.suppress(Exception, KeyboardInterrupt):  # exiting anyway
      host.close()


def _watch_exit(host: "PageHost") -> None:
  """Have ``host`` closed at exit: as the main thread ends (see
  :func:`_close_when_main_ends`), else by ``atexit``."""
  _open_hosts[id(host)] = host
  atexit.register(host.close)
  register = getattr(threading, "_register_atexit", None)  # Python's own
  if register is None or _exit_hook:
    return
  with contextlib.suppress(RuntimeError):  # the interpreter exits already
    # Run last first, so before the pools' hook (registered on import).
    register(_close_when_main_ends)
    _exit_hook.append(True)


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
  ):
    self.host = host
    self.port = check_port(port)
    self.token = token
    self.port_fallback = bool(port_fallback)
    self.title = title
    self._warn = WarnOnce()
    self.rates = PageRates()  # how fast the open pages draw
    self.playback = Playback(
      player,
      status=self._status,
      on_fail=self._on_fail,
      note=self._note,
      warn=self._warn,
      max_fps=self.rates.fastest,
    )
    self.page: Optional[Page] = None
    self._web: Optional[WebServer] = None
    self._closed = False
    self._interrupts = InterruptWatch(self._interrupted)
    self._clip_progress: Optional[float] = None  # a video being made
    self._layout = "auto"  # the layout option (see the viewers)

  # -- lifecycle -----------------------------------------------------------------

  def _serve(
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
    if self._closed:
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
      warn=self._warn,
      on_page_gone=self.playback.page_gone,
      on_page_open=self.playback.page_opened,
    )
    self.playback.start(page, health=self._health, pages=self.clients)
    self._interrupts.start()
    # A script that never calls close() gets a quiet close at exit (before
    # viser's own stop, registered earlier: atexit runs the last first),
    # as its main thread ends where it can (see _close_when_main_ends).
    _watch_exit(self)
    print(f"braxviewer: viewer running at {self.url}", flush=True)
    return page

  def close(self) -> None:
    """Stop the viewer thread and the server; training is not affected."""
    if self._closed:
      return
    self._closed = True
    atexit.unregister(self.close)
    _open_hosts.pop(id(self), None)
    self._interrupts.stop()
    self.playback.stop()
    if self._web is not None:
      self._web.stop()

  def stop(self) -> None:
    """The same as :meth:`close` (the original API's name)."""
    self.close()

  def __enter__(self) -> Any:
    return self.run()

  def __exit__(self, *exc: Any) -> None:
    self.close()

  def run(self) -> Any:
    raise NotImplementedError

  @property
  def url(self) -> Optional[str]:
    """The page's address once running."""
    return None if self._web is None else self._web.url

  @property
  def layout(self) -> str:
    """How the envs are drawn: ``"grid"`` or ``"overlay"`` once a model is
    drawn (see :mod:`braxviewer.scene.layout`), the option given before."""
    view = self.page.view if self.page is not None else None
    return view.layout if view is not None else self._layout

  @property
  def serving(self) -> bool:
    """The server and the viewer thread run."""
    return self._web is not None and self._web.alive() and self.playback.running

  def stats(self) -> dict:
    """Counters and rates shown in the status panel (for tests, benches)."""
    c, play, page = self.playback.player.counters, self.playback, self.page
    return dict(
      chunks_received=c.chunks_received,
      frames_received=c.frames_received,
      chunks_dropped=c.chunks_dropped,
      frames_dropped=c.frames_dropped,
      frames_shown=c.frames_shown,
      chunks_skipped=c.chunks_skipped,
      shown_per_s=play.shown.rate(),
      latency_s=play.latency.mean(),
      update_s=page.update_seconds.mean() if page else None,
      clients=self.clients(),
      triangles=page.triangles if page else 0,
      **self._stream_stats(),
    )

  def _stream_stats(self) -> dict:
    """What a live stream adds to :meth:`stats`."""
    return dict(received_per_s=0.0, env_steps=0, env_steps_per_s=0.0)

  def clients(self) -> int:
    """Browser pages connected now."""
    web = self._web
    return len(web.server.get_clients()) if web and web.alive() else 0

  # -- the drawn envs ------------------------------------------------------------

  def _show_envs(self, poser: Poser) -> None:
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

  # -- hooks ---------------------------------------------------------------------

  def _status(self) -> Status:
    return Status()

  def _note(self) -> str:
    progress = self._clip_progress
    return "" if progress is None else f" · _making a video… {progress:.0%}_"

  def _save_clip(self, client: Any) -> None:
    """The live page's *Save clip*: an MP4 of what the timeline holds, the
    followed env with the follow camera, else every env on the grid."""
    model, page = self._video_model(), self.page
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

    def render(out: str, on_frame: Callable[[int, int], None]) -> None:
      render_clip(
        timeline,
        model,
        np.arange(len(timeline)),
        out,
        env=env,
        grid=grid,
        camera="overview" if grid else "follow",
        on_frame=on_frame,
      )

    self._send_video(client, name, render)

  def _video_model(self) -> Any:
    """The MjModel videos draw (None: none yet)."""
    return None

  def _send_video(
    self,
    client: Any,
    name: str,
    render: Callable[[str, Callable[[int, int], None]], object],
  ) -> None:
    """Render a video in a helper thread (``render(path, on_frame)``) and
    hand it to ``client``'s browser as a download; the timeline's status
    line shows the progress, a failure shows in that page."""
    if client is None or self._clip_progress is not None:
      return  # one at a time
    self._clip_progress = 0.0

    def progress(done: int, total: int) -> None:
      self._clip_progress = done / max(total, 1)

    def work() -> None:
      try:
        with tempfile.TemporaryDirectory() as tmp:
          path = os.path.join(tmp, name)
          render(path, progress)
          with open(path, "rb") as f:
            data = f.read()
        client.send_file_download(name, data)
      except Exception as err:  # report it in the page that asked
        with contextlib.suppress(Exception):
          client.add_notification(
            "No video", " ".join(str(err).split()), color="red"
          )
      finally:
        self._clip_progress = None

    threading.Thread(target=work, name="braxviewer-video", daemon=True).start()

  def _on_fail(self, reason: str, warned: bool) -> None:
    if not warned:
      self._warn("fail", f"braxviewer: {reason} The page is off.")

  def _interrupted(self) -> None:
    """Ctrl-C (from the interrupt watch's thread)."""

  def _fault(self, message: str) -> None:
    self._warn("socket", f"braxviewer: {message}")

  def _health(self) -> Optional[str]:
    web = self._web
    if web is None or web.alive():
      return None
    why = f" ({web.death})" if web.death else ""
    return f"the web server stopped unexpectedly{why}; the page is gone."
