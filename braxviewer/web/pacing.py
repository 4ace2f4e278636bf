"""Pacing: which streamed frame is on screen now.

:class:`Player` sits between the trainer's callback thread and the viewer
thread. In live mode the newest chunk wins and everything the page cannot show
at real-time pace is dropped (and counted); in sync mode every frame is shown
and the producer waits on a :class:`Ticket` until its chunk was played.
Every chunk received is also kept in a timeline
(:class:`~braxviewer.core.timeline.RecentChunks`) that the player can *review*:
jump back, play on in stream order, rejoin the feed. Replay uses the same
player over a recording's timeline. Pure Python, no viser, no JAX: the pacing
rules are tested on their own.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import numbers
import threading
import time
from typing import Any, Callable, Deque, Optional, Tuple

from braxviewer.core.frames import FrameChunk
from braxviewer.core.timeline import ChunkSequence, RecentChunks

DEFAULT_DT = 1.0 / 30.0


class Ticket:
  """Released once a sync chunk was shown (or the wait was called off)."""

  def __init__(self):
    self._event = threading.Event()

  def release(self) -> None:
    self._event.set()

  @property
  def released(self) -> bool:
    return self._event.is_set()

  def wait(self, timeout: Optional[float] = None) -> bool:
    return self._event.wait(timeout)


@dataclasses.dataclass(eq=False)
class Entry:
  """A chunk in the player, with what the viewer computed for it."""

  chunk: FrameChunk
  ticket: Optional[Ticket] = None
  payload: Any = None  # e.g. body poses, set by the viewer thread
  t0: float = 0.0  # sim time of its first frame on the viewer's timeline
  position: int = -1  # stream position in the timeline (-1: not in it)
  from_feed: bool = False  # arrived from the trainer just now (not reviewed)

  @property
  def dt(self) -> float:
    dt = float(self.chunk.dt)
    return dt if dt > 0 and math.isfinite(dt) else DEFAULT_DT


@dataclasses.dataclass
class Counters:
  """What the player received, showed and dropped (cumulative)."""

  chunks_received: int = 0
  frames_received: int = 0
  chunks_dropped: int = 0
  frames_dropped: int = 0
  frames_shown: int = 0
  chunks_skipped: int = 0  # other source, or unreadable in the timeline


@dataclasses.dataclass(frozen=True)
class PlaybackState:
  """A snapshot of the player, for the timeline widgets."""

  timeline: ChunkSequence  # the chunks of the source on display
  cursor: int  # stream position of the chunk on screen (-1: none)
  frame: int  # frame of that chunk on screen
  following: bool  # the trainer's feed, not a review
  paused: bool
  speed: float
  loop: bool
  repeat: bool


class Player:
  """Chooses the frame to show, at real-time pace times ``speed``.

  It either *follows* the trainer's feed (the newest chunk in live mode,
  every chunk in sync mode) or *reviews* its timeline: the chunks kept in
  ``store`` (by default the last ``history`` chunks received; for replay, a
  recording), played in stream order from wherever :meth:`jump` put it.
  Reviewing holds the feed as pausing does: live chunks are dropped from
  display (they are still kept in the timeline) and a sync trainer waits
  until :meth:`go_live`.

  Args:
    store: where the timeline comes from: anything with
      ``chunks(source) -> ChunkSequence`` (a :class:`RecentChunks` the
      player appends every offered chunk to, or a recording). None: a
      ``RecentChunks(max_chunks=history)``.
    history: chunks per source kept for scrubbing (when ``store`` is None).
    live: there is a trainer feed to follow (False for replay: the player
      only ever reviews its store).
    loop: reviewing, start over after the last chunk of the timeline
      (otherwise: rejoin the feed if ``live``, else stop there).
    max_hold: in live mode, seconds a chunk plays at most while a newer one
      waits (long chunks would otherwise hold the screen minutes behind).
    clock: monotonic seconds (injectable for tests).
  """

  def __init__(
    self,
    store: Any = None,
    *,
    history: int = 64,
    live: bool = True,
    loop: bool = False,
    max_hold: float = 4.0,
    clock: Callable[[], float] = time.monotonic,
  ):
    if (
      isinstance(history, bool)
      or not isinstance(history, numbers.Integral)
      or history < 1
    ):
      raise ValueError(
        f"history must be a positive int (chunks kept per source), got"
        f" {history!r}."
      )
    self._clock = clock
    self.max_hold = float(max_hold)
    self._lock = threading.Lock()
    self._store = store if store is not None else RecentChunks(history)
    self._recent = isinstance(self._store, RecentChunks) and live
    self.live = bool(live)
    self.following = self.live
    self.loop = bool(loop)
    self.repeat = False
    self.ready = True  # False: hold playback (e.g. while the scene builds)
    self.cursor = -1  # stream position of the chunk on screen (-1: none)
    self._resume_at: Optional[int] = None  # reviewing: play this one next
    self._pending: Optional[Entry] = None  # live: newest wins
    self._queue: Deque[Entry] = collections.deque()  # sync: every chunk
    self._current: Optional[Entry] = None
    self._t0 = 0.0
    self._last_index = -1
    self._finished = True
    self._paused_at: Optional[float] = None
    self._speed = 1.0
    self._source = "train"
    self.counters = Counters()
    self.last_frame: Optional[Tuple[Entry, int]] = None

  # -- settings ----------------------------------------------------------------

  @property
  def speed(self) -> float:
    return self._speed

  def set_speed(self, speed: float) -> None:
    """Playback speed; 1.0 is real time."""
    speed = float(speed)
    if not speed > 0 or not math.isfinite(speed):
      raise ValueError(f"speed must be a finite number > 0, got {speed}.")
    with self._lock:
      now = self._clock()
      ref = self._paused_at if self._paused_at is not None else now
      if self._current is not None:
        pos = (ref - self._t0) * self._speed
        self._t0 = ref - pos / speed
      self._speed = speed

  @property
  def paused(self) -> bool:
    return self._paused_at is not None

  def set_paused(self, paused: bool) -> None:
    with self._lock:
      self._set_paused(paused)

  def _set_paused(self, paused: bool) -> None:
    now = self._clock()
    if paused and self._paused_at is None:
      self._paused_at = now
    elif not paused and self._paused_at is not None:
      self._t0 += now - self._paused_at
      self._paused_at = None

  @property
  def source(self) -> str:
    return self._source

  @property
  def timeline(self) -> ChunkSequence:
    """The chunks of the current source kept for review (a snapshot)."""
    return self._store.chunks(self._source)

  def set_source(self, source: str) -> None:
    """Which chunks to play: ``"train"`` or ``"eval"``. Reviewing, play on
    from the chunk of ``source`` nearest in env steps to the one on screen."""
    if source not in ("train", "eval"):
      raise ValueError(f"source must be 'train' or 'eval', got {source!r}.")
    with self._lock:
      if source == self._source:
        return
      old = self._store.chunks(self._source)
      steps = (
        int(old.env_steps[self.cursor - old.start])
        if old.start <= self.cursor < old.end
        else None
      )
      self._source = source
      if self._pending is not None and self._pending.chunk.source != source:
        self._pending = None
      if not self.following:
        new = self._store.chunks(source)
        i = new.nearest(steps) if steps is not None else 0
        self._resume_at = new.start + max(i, 0)
        self.cursor = -1
        self._finished = True

  def state(self) -> PlaybackState:
    """What the timeline widgets show now."""
    last = self.last_frame
    return PlaybackState(
      timeline=self.timeline,
      cursor=self.cursor,
      frame=last[1] if last is not None else 0,
      following=self.following,
      paused=self.paused,
      speed=self._speed,
      loop=self.loop,
      repeat=self.repeat,
    )

  # -- producer side (trainer thread) --------------------------------------------

  def offer(self, chunk: FrameChunk, sync: bool) -> Optional[Ticket]:
    """Hand over a chunk (kept in the timeline); never blocks.

    Returns a :class:`Ticket` to wait on for a sync chunk that will be played,
    or None (live chunk, or a chunk of the source not on display).
    """
    with self._lock:
      c = self.counters
      c.chunks_received += 1
      c.frames_received += chunk.num_steps
      position = self._store.append(chunk) if self._recent else -1
      if chunk.source != self._source:
        c.chunks_skipped += 1
        return None
      entry = Entry(chunk, position=position, from_feed=True)
      if sync:
        entry.ticket = Ticket()
        self._queue.append(entry)
        return entry.ticket
      if not self.following:  # reviewing: the feed is not on screen
        c.chunks_dropped += 1
        c.frames_dropped += chunk.num_steps
        return None
      if self._pending is not None:
        c.chunks_dropped += 1
        c.frames_dropped += self._pending.chunk.num_steps
      self._pending = entry
      return None

  def release_all(self) -> None:
    """Stop every producer from waiting (mode left sync, or closing)."""
    with self._lock:
      for entry in self._queue:
        if entry.ticket is not None:  # queued chunks are sync: all have one
          entry.ticket.release()
      if self._current is not None and self._current.ticket is not None:
        self._current.ticket.release()

  # -- consumer side (viewer thread) -------------------------------------------

  def tick(
    self, prepare: Callable[[Entry], None] = lambda entry: None
  ) -> Optional[Tuple[Entry, int]]:
    """The frame to draw now, or None when the screen need not change.

    ``prepare`` is called (outside the lock) once for each chunk that starts
    playing, e.g. to compute its body poses into ``entry.payload``.
    """
    with self._lock:
      if self._paused_at is not None or not self.ready:
        return None
      now = self._clock()
      if self._current is not None and not self._finished:
        frame = self._advance(now)
        if frame is not None or not self._finished:
          return frame
      nxt = self._take_next()
      if nxt is None:
        return None
    self._prepare(nxt, prepare)
    with self._lock:
      self._begin(nxt, self._clock(), first=-1)
      return self._advance(self._t0)

  @staticmethod
  def _prepare(entry: Entry, prepare: Callable[[Entry], None]) -> None:
    try:
      prepare(entry)
    except BaseException:
      if entry.ticket is not None:  # never leave a sync producer waiting
        entry.ticket.release()
      raise

  def _begin(self, entry: Entry, now: float, first: int) -> None:
    if (
      self._current is not None
      and self._current is not entry
      and self._current.ticket is not None
    ):
      self._current.ticket.release()  # left before its end (a jump)
    self._current = entry
    self._t0 = self._paused_at if self._paused_at is not None else now
    self._last_index = first
    self._finished = False
    if entry.position >= 0:
      self.cursor = entry.position

  def _take_next(self) -> Optional[Entry]:
    if self.following:
      if self._queue:
        return self._queue.popleft()
      nxt, self._pending = self._pending, None
      return nxt
    return self._next_in_timeline()

  def _next_in_timeline(self) -> Optional[Entry]:
    timeline = self._store.chunks(self._source)
    if self._resume_at is not None:
      position, self._resume_at = self._resume_at, None
    elif self.repeat and self.cursor >= 0:
      position = self.cursor
    else:
      position = self.cursor + 1
    position = max(position, timeline.start)
    if position >= timeline.end:
      if self.loop and len(timeline):
        position = timeline.start
      elif self.live:  # caught up with the feed: follow it again
        self.following = True
        return self._take_next()
      else:
        return None
    try:
      chunk = timeline[position - timeline.start]
    except (ValueError, OSError):  # unreadable (e.g. a damaged recording)
      self.counters.chunks_skipped += 1
      self.cursor = position
      return None
    return Entry(chunk, position=position)

  def _advance(self, now: float) -> Optional[Tuple[Entry, int]]:
    entry = self._current
    assert entry is not None  # only called while a chunk plays
    n = entry.chunk.num_steps
    index = int((now - self._t0) * self._speed / entry.dt + 1e-6)
    if entry.ticket is not None:  # sync: never skip a frame
      index = min(index, self._last_index + 1)
    if (
      entry.ticket is None
      and self._pending is not None
      and (now - self._t0) * self._speed >= self.max_hold
    ):
      index = n  # live: a newer chunk waits; cut this one short
    if index >= n:
      self._finished = True
      self.counters.frames_dropped += max(0, n - 1 - self._last_index)
      if entry.ticket is not None:
        entry.ticket.release()
      return None
    if index <= self._last_index:
      return None
    self.counters.frames_dropped += index - self._last_index - 1
    self.counters.frames_shown += 1
    self._last_index = index
    self.last_frame = (entry, index)
    return self.last_frame

  def next_due(self) -> float:
    """Seconds until the next frame is due (for the viewer's sleep)."""
    with self._lock:
      if self._paused_at is not None or not self.ready:
        return 0.05
      if self._current is None or self._finished:
        if self.following:
          return 0.0 if (self._queue or self._pending) else 0.01
        timeline = self._store.chunks(self._source)
        more = (
          self._resume_at is not None
          or self.loop
          or self.live
          or self.repeat
          or self.cursor + 1 < timeline.end
        )
        return 0.0 if more and len(timeline) else 0.01
      entry = self._current
      due = self._t0 + (self._last_index + 1) * entry.dt / self._speed
      return max(0.0, due - self._clock())

  # -- review ------------------------------------------------------------------

  def jump(
    self,
    position: int,
    prepare: Callable[[Entry], None] = lambda entry: None,
  ) -> Optional[Tuple[Entry, int]]:
    """Review from the chunk at stream ``position`` of the timeline
    (clamped to the chunks kept), at its first frame; playback goes on from
    there unless paused. Returns the frame to draw, or None (empty).

    Raises:
      ValueError: the chunk cannot be read (e.g. a damaged recording).
    """
    with self._lock:
      timeline = self._store.chunks(self._source)
      if not len(timeline):
        return None
      position = min(max(int(position), timeline.start), timeline.end - 1)
    entry = Entry(timeline[position - timeline.start], position=position)
    prepare(entry)
    with self._lock:
      if self.following and self._pending is not None:
        self.counters.chunks_dropped += 1
        self.counters.frames_dropped += self._pending.chunk.num_steps
        self._pending = None
      self.following = False
      self._resume_at = None
      self._begin(entry, self._clock(), first=0)
      self.counters.frames_shown += 1
      self.last_frame = (entry, 0)
      return self.last_frame

  def go_live(self) -> None:
    """Follow the trainer's feed from now on, playing: the newest chunk
    plays now from its first frame (one waiting from the feed, else the
    newest kept), also on the newest chunk already, paused, or after
    training ended (no new chunk will come: it plays again); then each new
    chunk as it arrives. A feed chunk playing live plays on."""
    with self._lock:
      if not self.live:
        return
      playing_live = (
        self.following
        and self._paused_at is None
        and self._current is not None
        and self._current.from_feed
        and not self._finished
      )
      self.following = True
      self._resume_at = None
      self._set_paused(False)
      if playing_live:
        return
      current = self._current
      if current is not None and not self._finished:
        self._finished = True  # the next tick takes the newest chunk
        if current.ticket is not None:
          current.ticket.release()  # a sync trainer waits no more for it
      timeline = self._store.chunks(self._source)
      if self._pending is None and not self._queue and len(timeline):
        self._pending = Entry(timeline[-1], position=timeline.end - 1)

  def use_store(self, store: RecentChunks) -> None:
    """Play another stream from now on (a viewer server showing another
    run): its kept chunks are the timeline, its newest chunk plays next,
    and what waited on the old one is released."""
    with self._lock:
      for entry in list(self._queue) + [self._current, self._pending]:
        if entry is not None and entry.ticket is not None:
          entry.ticket.release()
      self._queue.clear()
      self._store = store
      self._recent = self.live
      self._current = None
      self._finished = True
      self._resume_at = None
      self.cursor = -1
      self.last_frame = None
      self.following = self.live
      timeline = store.chunks(self._source)
      self._pending = (
        Entry(timeline[-1], position=timeline.end - 1)
        if len(timeline)
        else None
      )

  @property
  def held(self) -> bool:
    """Playback waits on someone: paused, or reviewing while a trainer
    feeds it."""
    return self.paused or (self.live and not self.following)
