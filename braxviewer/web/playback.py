"""The viewer thread: plays the player's frames on the page, at their pace.

:class:`Playback` is the loop that paces a :class:`~braxviewer.web.page.Page`:
it asks the :class:`~braxviewer.web.pacing.Player` which frame is due, poses
the envs of each chunk that starts playing (a :class:`Poser`, e.g.
:class:`braxviewer.scene.batched.BatchedScene`), draws frames on the page, refreshes
its status a few times a second, and takes the timeline controls (review,
play/pause, speed, source). The live viewer and the replay viewer run the
same one. A frame that cannot be drawn is skipped with one warning; a
failure that persists (or a dead server) ends the loop through ``on_fail``.
No JAX.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from typing import Any, Callable, Optional, Protocol

import mujoco
import numpy as np

from braxviewer.core.frames import FrameChunk, fit_envs
from braxviewer.core.timeline import ChunkSequence
from braxviewer.web.commands import COMMAND_KEY
from braxviewer.web.errors import WarnOnce
from braxviewer.web.meters import Average, RateMeter
from braxviewer.web.pacing import Entry, Player
from braxviewer.web.page import Page
from braxviewer.web.panels import Status

_PANEL_PERIOD = 0.25  # seconds between status/plot refreshes
# A pause or a review belongs to the pages: with none open this long, the
# playback follows training again (sync falls back to live sooner: feed.py).
_HOLD_WITHOUT_PAGE_S = 10.0
MIN_SPEED, MAX_SPEED = 0.1, 4.0  # playback speed, as the page's slider
_MAX_CONSECUTIVE_ERRORS = 20


class Poser(Protocol):
  """Body poses of N envs from streamed chunks (the pose engine)."""

  num_envs: int
  single_model: mujoco.MjModel
  offsets: np.ndarray

  def poses(self, chunk: FrameChunk) -> Any: ...
  def rest_poses(self) -> Any: ...


class Playback:
  """Plays a player's frames on a page.

  Args:
    player: the feed (live) or a recording's timeline (replay).
    status: what the status block says now.
    on_fail: called once when the loop gives up, with the reason and
      whether a warning said so already.
    note: extra text for the timeline's status line.
    warn: the viewer's once-per-kind warnings.
    max_fps: frames per second the fastest open page draws (None: not
      known); frames due faster than that are not sent, only the newest.
  """

  def __init__(
    self,
    player: Player,
    *,
    status: Callable[[], Status],
    on_fail: Callable[[str, bool], None],
    note: Callable[[], str] = lambda: "",
    warn: Optional[WarnOnce] = None,
    max_fps: Callable[[], Optional[float]] = lambda: None,
  ):
    self.player = player
    self._max_fps = max_fps
    self._drawn_at = 0.0
    self._status = status
    self._on_fail = on_fail
    self._note = note
    self._warn = warn or WarnOnce()
    self._page: Optional[Page] = None
    self._poser: Optional[Poser] = None
    self._lock = threading.Lock()  # the poser
    self._jobs: "queue.SimpleQueue[Callable[[], None]]" = queue.SimpleQueue()
    self._sim_t = 0.0
    self._thread: Optional[threading.Thread] = None
    self._stop = threading.Event()
    self._pages: Callable[[], int] = lambda: 1
    self._alone_since: Optional[float] = None
    self._holder: Optional[int] = None  # the page that paused or reviewed
    self.shown = RateMeter()  # frames drawn per second
    self.skipped = 0  # frames not sent: the pages draw slower
    self.latency = Average()  # seconds from the device to the page

  # -- lifecycle -----------------------------------------------------------------

  def start(
    self,
    page: Page,
    health: Callable[[], Optional[str]] = lambda: None,
    pages: Callable[[], int] = lambda: 1,
  ) -> None:
    """Play on ``page`` in a background thread; ``health()`` returns why
    the page is gone (e.g. the server died), or None while it serves;
    ``pages()`` counts the browser pages open."""
    self._page = page
    self._pages = pages
    self._thread = threading.Thread(
      target=self._loop, args=(health,), name="braxviewer-web", daemon=True
    )
    self._thread.start()

  def stop(self, timeout: float = 5.0) -> None:
    self._stop.set()
    self.player.release_all()
    thread = self._thread
    if thread is not None and thread is not threading.current_thread():
      thread.join(timeout)

  @property
  def running(self) -> bool:
    return self._thread is not None and self._thread.is_alive()

  def call_soon(self, job: Callable[[], None]) -> None:
    """Run ``job`` on the viewer thread (e.g. a scene rebuild asked for by
    the trainer's thread, which must not wait for it)."""
    self._jobs.put(job)

  def set_poser(self, poser: Optional[Poser]) -> None:
    """Pose chunks with ``poser`` from now on (the page shows its envs)."""
    with self._lock:
      self._poser = poser

  # -- timeline controls (the panel's, and Python's) -----------------------------

  @property
  def timeline(self) -> ChunkSequence:
    """The chunks of the source on display that can be reviewed."""
    return self.player.timeline

  @property
  def reviewing(self) -> bool:
    """True while playing the timeline rather than the trainer's newest
    chunks (see :meth:`jump`, :meth:`go_live`)."""
    return not self.player.following

  def jump(self, index: int) -> None:
    """Show chunk ``index`` of :attr:`timeline` (0: the oldest kept; -1:
    the newest) from its first frame, and play on in stream order from
    there unless paused. Live, this reviews: new chunks are kept but not
    shown (a sync trainer waits) until :meth:`go_live` or the review
    catches up with them."""
    timeline = self.player.timeline
    if not len(timeline):
      return
    index = int(index)
    self._jump_to(
      timeline.start + (index + len(timeline) if index < 0 else index)
    )

  def step_chunk(self, delta: int) -> None:
    """The previous (-1) or next (+1) chunk of the timeline."""
    p = self.player
    timeline = p.timeline
    if not len(timeline):
      return
    cursor = p.cursor if p.cursor >= 0 else timeline.end - 1
    position = max(cursor, timeline.start - 1) + int(delta)
    if p.loop or not p.live:
      position = timeline.start + (position - timeline.start) % len(timeline)
    self._jump_to(position)

  def jump_to_steps(self, env_steps: int) -> None:
    """Show the chunk of the timeline nearest to ``env_steps`` env steps."""
    i = self.player.timeline.nearest(int(env_steps))
    if i >= 0:
      self.jump(i)

  def go_live(self) -> None:
    """Follow training again: the newest chunks, playing."""
    self.player.go_live()

  def set_paused(self, paused: bool) -> None:
    if paused:
      self._held_by_acting_page()
    self.player.set_paused(bool(paused))

  def page_gone(self, client_id: int) -> None:
    """A page closed: a pause or a review it made ends with it (training
    must not wait on a page that is gone)."""
    if self._holder is not None and self._holder == client_id:
      self._holder = None
      self.player.go_live()

  def _held_by_acting_page(self) -> None:
    page = self._page
    self._holder = page.acting_page() if page is not None else None

  def set_speed(self, speed: float) -> None:
    """Playback speed, 1 = real time, clamped to the slider's 0.1 to 4.

    Raises:
      ValueError: not a finite number.
    """
    speed = float(speed)
    if not math.isfinite(speed):
      raise ValueError(f"speed must be a finite number, got {speed}.")
    self.player.set_speed(min(MAX_SPEED, max(MIN_SPEED, speed)))

  def set_loop(self, loop: bool) -> None:
    """Reviewing: start over at the timeline's end (live, otherwise the
    review ends by following training again)."""
    self.player.loop = bool(loop)

  def set_repeat(self, repeat: bool) -> None:
    """Reviewing: play the current chunk again and again."""
    self.player.repeat = bool(repeat)

  def set_source(self, source: str) -> None:
    """Play ``"train"`` chunks or ``"eval"`` rollouts."""
    self.player.set_source(source)

  # -- the loop ------------------------------------------------------------------

  def _jump_to(self, position: int) -> None:
    self._held_by_acting_page()  # a review, from a page or Python
    try:
      frame = self.player.jump(position, self._prepare)
    except ValueError as err:  # an unreadable chunk of a recording
      self._warn("jump", f"braxviewer: cannot show that chunk ({err}).")
      return
    if frame is not None:
      self._draw(*frame)

  def _prepare(self, entry: Entry) -> None:
    """A chunk is about to play: its place in sim time, and its body poses
    when a page is open to see them (with none, nothing is posed or sent:
    the timeline and the counts go on)."""
    entry.t0 = self._sim_t + entry.dt
    if self._pages() > 0:
      self._pose(entry)

  def _pose(self, entry: Entry) -> None:
    with self._lock:
      poser = self._poser
    if poser is None:
      return
    chunk = entry.chunk
    if poser.num_envs > 1 and chunk.num_envs != poser.num_envs:
      chunk = entry.chunk = fit_envs(chunk, poser.num_envs)  # e.g. eval
    entry.payload = poser.poses(chunk)

  def page_opened(self) -> None:
    """A page opened: show it the frame on screen (posed now if no page
    was open when its chunk started, e.g. while paused)."""

    def show_last() -> None:
      last = self.player.last_frame
      if last is not None:
        entry, index = last
        if entry.payload is None:
          self._pose(entry)
        self._draw(entry, index, count=False)

    self.call_soon(show_last)

  def _draw(self, entry: Entry, index: int, count: bool = True) -> None:
    if count and self._too_soon(entry, index):
      return
    if entry.payload is None and self._pages() > 0:
      self._pose(entry)  # a page opened while this chunk played
    poses, page = entry.payload, self._page
    if poses is None or page is None:
      return
    chunk = entry.chunk
    done = np.asarray(chunk.done[index])
    info = {k: np.asarray(v[index]) for k, v in chunk.info.items()}
    page.show(
      np.asarray(poses.xpos[index]),
      np.asarray(poses.xquat[index]),
      np.asarray(poses.valid[index]),
      done,
      command=info.get(COMMAND_KEY),
    )
    if not count:
      return
    self.shown.add()
    if index == 0 and entry.from_feed:
      self.latency.add(time.time() - chunk.wall_time)
    self._sim_t = entry.t0 + index * entry.dt
    page.trace(
      self._sim_t,
      np.asarray(chunk.reward[index]),
      done > 0,
      {k: np.asarray(v[index]) for k, v in chunk.metrics.items()},
      info,
    )

  def _too_soon(self, entry: Entry, index: int) -> bool:
    """Whether to leave this frame out: the pages draw slower than frames
    come (the last frame of a chunk is always sent)."""
    fps = self._max_fps()
    now = time.monotonic()
    last = index == entry.chunk.num_steps - 1
    if fps and not last and now - self._drawn_at < 0.8 / fps:
      self.skipped += 1
      return True
    self._drawn_at = now
    return False

  def _release_orphaned_hold(self, now: float) -> None:
    player = self.player
    if not (player.live and player.held) or self._pages() > 0:
      self._alone_since = None
    elif self._alone_since is None:
      self._alone_since = now
    elif now - self._alone_since > _HOLD_WITHOUT_PAGE_S:
      self._alone_since = None
      player.go_live()  # the pages that paused or reviewed are gone

  def _refresh(self) -> None:
    if self._page is not None:
      self._page.refresh(self._status(), self.player.state(), self._note())

  def _loop(self, health: Callable[[], Optional[str]]) -> None:
    errors = 0
    last_refresh = 0.0
    while not self._stop.is_set():
      try:
        gone = health()
        if gone is not None:
          self._on_fail(gone, False)
          return
        while not self._jobs.empty():
          self._jobs.get_nowait()()
        frame = self.player.tick(self._prepare)
        if frame is not None:
          self._draw(*frame)
          errors = 0
        now = time.monotonic()
        if now - last_refresh >= _PANEL_PERIOD:
          last_refresh = now
          self._release_orphaned_hold(now)
          self._refresh()
      except Exception as err:  # never let the page take training down
        errors += 1
        self._warn(
          "loop",
          f"braxviewer: the viewer could not draw a frame"
          f" ({type(err).__name__}: {err}). It skips such frames, and turns"
          " itself off if it keeps failing; training goes on.",
        )
        if errors >= _MAX_CONSECUTIVE_ERRORS:
          self._on_fail(
            f"the viewer failed {errors} times in a row"
            f" ({type(err).__name__}: {err}).",
            True,
          )
          return
      self._stop.wait(min(max(self.player.next_due(), 0.001), 0.02))
