"""Rates and latency over a sliding time window, for the status panel."""

from __future__ import annotations

import collections
import threading
import time
from typing import Callable, Deque, Optional, Tuple


class RateMeter:
  """Events (or amounts) per second over the last ``window`` seconds."""

  def __init__(self, window: float = 3.0,
               clock: Callable[[], float] = time.monotonic):
    self._window = window
    self._clock = clock
    self._events: Deque[Tuple[float, float]] = collections.deque()
    self._lock = threading.Lock()

  def add(self, amount: float = 1.0) -> None:
    now = self._clock()
    with self._lock:
      self._events.append((now, float(amount)))
      self._trim(now)

  def _trim(self, now: float) -> None:
    while self._events and self._events[0][0] < now - self._window:
      self._events.popleft()

  def rate(self) -> float:
    now = self._clock()
    with self._lock:
      self._trim(now)
      if not self._events:
        return 0.0
      span = max(now - self._events[0][0], self._window / 3)
      return sum(a for _, a in self._events) / span


class Average:
  """Mean of the values seen in the last ``window`` seconds."""

  def __init__(self, window: float = 3.0,
               clock: Callable[[], float] = time.monotonic):
    self._meter = RateMeter(window, clock)
    self._count = RateMeter(window, clock)
    self.last: Optional[float] = None

  def add(self, value: float) -> None:
    self.last = value
    self._meter.add(value)
    self._count.add(1.0)

  def mean(self) -> Optional[float]:
    n = self._count.rate()
    return self._meter.rate() / n if n > 0 else self.last
