"""What a run has to send while the socket is slow or the server away.

:class:`Outbox` holds encoded messages, bounded in bytes and in count; what
a full outbox pushes out is decided by each message class's ``drop``
(:mod:`~braxviewer.remote.wire`): a chunk pushes out the oldest chunks
(live: the newest wins), a progress report (or a phase or trainer mode)
the oldest such message or chunk; control messages (the model, a stream's
start and end: a few per run) are never dropped. :class:`LinkStats` counts
what the connection did. No JAX, no web.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
from typing import Deque, Optional, Tuple

from braxviewer.remote.wire import CHUNK, CONTROL, PROGRESS


@dataclasses.dataclass
class LinkStats:
  """What the connection did (for tests, benchmarks and the curious)."""

  connects: int = 0  # successful connections (1 + reconnects)
  chunks_sent: int = 0
  chunks_dropped: int = 0  # no server, or the outbox was full
  progress_dropped: int = 0  # reports, phases, modes: the outbox was full
  bytes_sent: int = 0
  queued_bytes: int = 0  # in the outbox now


class Outbox:
  """Messages waiting for the socket, bounded in bytes and in count.

  A chunk that does not fit pushes the oldest queued chunks out (live: the
  newest wins); a progress report (or a phase or trainer mode: the latest
  of those is sent again on reconnect anyway) pushes the oldest such
  message or chunk out. Control messages (the model, a stream's start and
  end: a few per training run) are never dropped: the server must hear
  them."""

  def __init__(self, max_bytes: int, max_messages: int):
    self.max_bytes = int(max_bytes)
    self.max_messages = int(max_messages)
    self._items: Deque[Tuple[bytes, str]] = collections.deque()
    self.nbytes = 0
    self._lock = threading.Lock()

  def put(self, data: bytes, kind: str, stats: LinkStats) -> bool:
    """Queue ``data`` (a message of ``kind``); False when it was dropped
    instead."""
    with self._lock:
      if kind != CONTROL:
        if len(data) > self.max_bytes:
          _count_drop(kind, stats)
          return False
        while self._items and (
          self.nbytes + len(data) > self.max_bytes
          or len(self._items) >= self.max_messages
        ):
          if not self._drop_oldest(kind, stats):
            _count_drop(kind, stats)
            return False
      self._items.append((data, kind))
      self.nbytes += len(data)
      stats.queued_bytes = self.nbytes
      return True

  def _drop_oldest(self, kind: str, stats: LinkStats) -> bool:
    """Drop the oldest message that may make room for one of ``kind``;
    False when none may go."""
    may_go = (CHUNK,) if kind == CHUNK else (CHUNK, PROGRESS)
    for i, (data, queued) in enumerate(self._items):
      if queued in may_go:
        del self._items[i]
        self.nbytes -= len(data)
        _count_drop(queued, stats)
        return True
    return False

  def take(self, stats: LinkStats) -> Optional[Tuple[bytes, str]]:
    """The oldest message and its kind (None: empty)."""
    with self._lock:
      if not self._items:
        return None
      data, kind = self._items.popleft()
      self.nbytes -= len(data)
      stats.queued_bytes = self.nbytes
      return data, kind

  def __len__(self) -> int:
    return len(self._items)


def _count_drop(kind: str, stats: LinkStats) -> None:
  if kind == CHUNK:
    stats.chunks_dropped += 1
  else:
    stats.progress_dropped += 1
