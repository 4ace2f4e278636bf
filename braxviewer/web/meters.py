"""Rates and averages over a sliding time window, for the status panel."""

from __future__ import annotations

import collections
import threading
import time
from typing import Callable, Deque, Optional, Tuple


class RateMeter:
  """Amount per second over the last ``window`` seconds.

  The amount of the oldest event in the window accrued before it, so the
  rate is the amount of the later events over the time since the oldest one
  (the same for frames counted one by one, chunks of frames, or env-step
  increments). It decays to 0 once events stop.
  """

  def __init__(
    self, window: float = 3.0, clock: Callable[[], float] = time.monotonic
  ):
    self._window = window
    self._clock = clock
    self._events: Deque[Tuple[float, float]] = collections.deque()
    self._lock = threading.Lock()

  def add(self, amount: float = 1.0) -> None:
    now = self._clock()
    with self._lock:
      self._events.append((now, float(amount)))
      self._trim(now)

  def clear(self) -> None:
    with self._lock:
      self._events.clear()

  def _trim(self, now: float) -> None:
    while len(self._events) > 1 and self._events[0][0] < now - self._window:
      self._events.popleft()

  def rate(self) -> float:
    now = self._clock()
    with self._lock:
      self._trim(now)
      if len(self._events) < 2:
        return 0.0
      span = max(now - self._events[0][0], 1e-9)
      return sum(a for _, a in list(self._events)[1:]) / span


class Average:
  """Mean of the values seen in the last ``window`` seconds (the last value
  once none is that recent)."""

  def __init__(
    self, window: float = 3.0, clock: Callable[[], float] = time.monotonic
  ):
    self._window = window
    self._clock = clock
    self._values: Deque[Tuple[float, float]] = collections.deque()
    self._lock = threading.Lock()
    self.last: Optional[float] = None

  def add(self, value: float) -> None:
    now = self._clock()
    with self._lock:
      self.last = float(value)
      self._values.append((now, float(value)))
      while self._values and self._values[0][0] < now - self._window:
        self._values.popleft()

  def mean(self) -> Optional[float]:
    now = self._clock()
    with self._lock:
      while self._values and self._values[0][0] < now - self._window:
        self._values.popleft()
      if not self._values:
        return self.last
      return sum(v for _, v in self._values) / len(self._values)

  def clear(self) -> None:
    with self._lock:
      self._values.clear()
      self.last = None
