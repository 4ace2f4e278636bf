"""How fast each open page draws, as the pages say.

A small script runs in every page (sent once through viser, which replays it
to pages that connect later): it counts the browser's animation frames and
reports the count twice a second with a ``GET /braxviewer/frames?page=ID&n=N``
that the server answers, after its access checks, with 204.
:class:`PageRates` turns the reports into frames per second, so the viewer
sends no more scene updates than the fastest page can draw: updates a page
cannot show only cost it the time to take them in (the page then draws
fewer frames, not more). No JAX.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Dict, Optional, Tuple

FRAMES_PATH = "/braxviewer/frames"

SCRIPT = (
  """
(() => {
  if (window.__braxviewerFrames) return;
  const state = (window.__braxviewerFrames = { n: 0 });
  const page = Math.random().toString(36).slice(2, 12);
  const tick = () => { state.n += 1; requestAnimationFrame(tick); };
  requestAnimationFrame(tick);
  setInterval(() => {
    fetch(`%s?page=${page}&n=${state.n}`, { cache: "no-store" })
      .catch(() => {});
  }, 500);
})();
"""
  % FRAMES_PATH
)


class PageRates:
  """Animation frames per second of each page that reports.

  Args:
    window: seconds a report counts (a page that stops reporting, closed or
      hidden, no longer does).
    clock: monotonic seconds.
  """

  def __init__(
    self, window: float = 3.0, clock: Callable[[], float] = time.monotonic
  ):
    self._window = float(window)
    self._clock = clock
    self._lock = threading.Lock()
    # page -> (first time, first count, last time, last count)
    self._pages: Dict[str, Tuple[float, int, float, int]] = {}

  def report(self, page: str, frames: int) -> None:
    """Page ``page`` has drawn ``frames`` animation frames so far."""
    now, frames = self._clock(), int(frames)
    with self._lock:
      old = self._pages.get(page)
      if old is None or frames < old[3] or now - old[2] > self._window:
        self._pages[page] = (now, frames, now, frames)
      else:
        first_t, first_n, _, _ = old
        if now - first_t > self._window:  # slide: keep the last interval
          first_t, first_n = old[2], old[3]
        self._pages[page] = (first_t, first_n, now, frames)
      for key in [k for k, v in self._pages.items() if now - v[2] > 10.0]:
        del self._pages[key]

  def fastest(self) -> Optional[float]:
    """Frames per second of the fastest page reporting now, or None."""
    now = self._clock()
    best = None
    with self._lock:
      for first_t, first_n, last_t, last_n in self._pages.values():
        if now - last_t > self._window or last_t - first_t < 0.4:
          continue
        rate = (last_n - first_n) / (last_t - first_t)
        best = rate if best is None else max(best, rate)
    return best
