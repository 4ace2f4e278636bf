"""Pacing: which streamed frame is on screen now.

:class:`Player` sits between the trainer's callback thread and the viewer
thread. In live mode the newest chunk wins and everything the page cannot show
at real-time pace is dropped (and counted); in sync mode every frame is shown
and the producer waits on a :class:`Ticket` until its chunk was played. Pure
Python, no viser, no JAX: the pacing rules are tested on their own.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import threading
import time
from typing import Any, Callable, Deque, Optional, Tuple

from braxviewer.frames import FrameChunk

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
  chunks_skipped: int = 0  # other source than the one on display


class Player:
  """Chooses the frame to show, at real-time pace times ``speed``.

  Args:
    history: chunks kept for scrubbing once they were played.
    max_hold: in live mode, seconds a chunk plays at most while a newer one
      waits (long chunks would otherwise hold the screen minutes behind).
    clock: monotonic seconds (injectable for tests).
  """

  def __init__(
      self, history: int = 8, max_hold: float = 4.0,
      clock: Callable[[], float] = time.monotonic,
  ):
    self._clock = clock
    self.max_hold = float(max_hold)
    self._lock = threading.Lock()
    self._pending: Optional[Entry] = None  # live: newest wins
    self._queue: Deque[Entry] = collections.deque()  # sync: every chunk
    self._current: Optional[Entry] = None
    self._t0 = 0.0
    self._last_index = -1
    self._finished = True
    self._paused_at: Optional[float] = None
    self._speed = 1.0
    self._source = "train"
    self._history: Deque[Entry] = collections.deque(maxlen=max(1, history))
    self.counters = Counters()
    self.last_frame: Optional[Tuple[Entry, int]] = None

  # -- settings ----------------------------------------------------------------

  @property
  def speed(self) -> float:
    return self._speed

  def set_speed(self, speed: float) -> None:
    """Playback speed; 1.0 is real time."""
    speed = float(speed)
    if not speed > 0:
      raise ValueError(f"speed must be > 0, got {speed}.")
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
      now = self._clock()
      if paused and self._paused_at is None:
        self._paused_at = now
      elif not paused and self._paused_at is not None:
        self._t0 += now - self._paused_at
        self._paused_at = None

  @property
  def source(self) -> str:
    return self._source

  def set_source(self, source: str) -> None:
    """Which chunks to play: ``"train"`` or ``"eval"``."""
    if source not in ("train", "eval"):
      raise ValueError(f"source must be 'train' or 'eval', got {source!r}.")
    with self._lock:
      self._source = source
      if self._pending is not None and self._pending.chunk.source != source:
        self._pending = None

  # -- producer side (trainer thread) --------------------------------------------

  def offer(self, chunk: FrameChunk, sync: bool) -> Optional[Ticket]:
    """Hand over a chunk; never blocks.

    Returns a :class:`Ticket` to wait on for a sync chunk that will be played,
    or None (live chunk, or a chunk of the source not on display).
    """
    with self._lock:
      c = self.counters
      c.chunks_received += 1
      c.frames_received += chunk.num_steps
      if chunk.source != self._source:
        c.chunks_skipped += 1
        return None
      if sync:
        entry = Entry(chunk, Ticket())
        self._queue.append(entry)
        return entry.ticket
      if self._pending is not None:
        c.chunks_dropped += 1
        c.frames_dropped += self._pending.chunk.num_steps
      self._pending = Entry(chunk)
      return None

  def release_all(self) -> None:
    """Stop every producer from waiting (mode left sync, or closing)."""
    with self._lock:
      for entry in self._queue:
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
      if self._paused_at is not None:
        return None
      now = self._clock()
      if self._current is not None and not self._finished:
        frame = self._advance(now)
        if frame is not None or not self._finished:
          return frame
      nxt = self._take_next()
      if nxt is None:
        return None
    try:
      prepare(nxt)
    except BaseException:
      if nxt.ticket is not None:  # never leave a sync producer waiting
        nxt.ticket.release()
      raise
    with self._lock:
      self._current = nxt
      self._history.append(nxt)
      self._t0 = self._clock()
      self._last_index = -1
      self._finished = False
      return self._advance(self._t0)

  def _take_next(self) -> Optional[Entry]:
    if self._queue:
      return self._queue.popleft()
    nxt, self._pending = self._pending, None
    return nxt

  def _advance(self, now: float) -> Optional[Tuple[Entry, int]]:
    entry = self._current
    n = entry.chunk.num_steps
    index = int((now - self._t0) * self._speed / entry.dt + 1e-6)
    if entry.ticket is not None:  # sync: never skip a frame
      index = min(index, self._last_index + 1)
    if (entry.ticket is None and self._pending is not None
        and (now - self._t0) * self._speed >= self.max_hold):
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
      if self._paused_at is not None:
        return 0.05
      if self._current is None or self._finished:
        return 0.0 if (self._queue or self._pending) else 0.01
      entry = self._current
      due = self._t0 + (self._last_index + 1) * entry.dt / self._speed
      return max(0.0, due - self._clock())

  # -- history -------------------------------------------------------------

  def history_length(self) -> int:
    """Frames available for scrubbing (played chunks, oldest first)."""
    with self._lock:
      return sum(e.chunk.num_steps for e in self._history)

  def seek(self, position: int) -> Optional[Tuple[Entry, int]]:
    """The frame at ``position`` of the history (clamped); pauses playback."""
    with self._lock:
      if not self._history:
        return None
      if self._paused_at is None:
        self._paused_at = self._clock()
      position = max(0, int(position))
      for entry in self._history:
        if position < entry.chunk.num_steps:
          return entry, position
        position -= entry.chunk.num_steps
      last = self._history[-1]
      return last, last.chunk.num_steps - 1
