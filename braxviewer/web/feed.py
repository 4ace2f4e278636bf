"""The page's end of a training stream.

:class:`LiveFeed` is a :class:`~braxviewer.core.protocol.TrainingViewer` that
hands each chunk to the :class:`~braxviewer.web.pacing.Player`, keeps the
counts and rates the status block shows, and passes progress on. It never
touches a widget. No JAX.

In sync mode it waits until the chunk was shown, but never for good: the
wait ends when the mode leaves sync, when the viewer can no longer show
anything, on Ctrl-C (:meth:`interrupt`), and when no page is open: sync
paces training for someone watching (and a pause or a review belongs to
the page that made it), so after ``orphan_s`` seconds with no page, sync
falls back to live (``on_orphaned``) and training goes on.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, Mapping, Optional

from braxviewer.core import run_state
from braxviewer.core.frames import FrameChunk
from braxviewer.core.protocol import Mode, StreamInfo
from braxviewer.web.meters import RateMeter
from braxviewer.web.pacing import Player
from braxviewer.web.panels import Status


class LiveFeed:
  """Chunks from the trainer into the player; what the trainer reports.

  Args:
    player: where chunks go.
    mode: the initially wanted mode.
    ready: whether the page can show chunks now (a model to draw, a
      running viewer thread, not closed, not failed); the mode is off
      otherwise and a sync wait ends.
    on_start: called with the stream's info (lay out the envs).
    on_progress: called with each progress report (the curves).
    pages: how many browser pages are open now.
    on_orphaned: called (once per occurrence) when sync fell back to live
      because no page was open.
    orphan_s: how long a held sync waits with no page (a reload takes a
      second or two).
  """

  def __init__(
    self,
    player: Player,
    *,
    mode: Mode,
    ready: Callable[[], bool],
    on_start: Callable[[StreamInfo], None],
    on_progress: Callable[[int, Mapping[str, float]], None],
    pages: Callable[[], int] = lambda: 1,
    on_orphaned: Callable[[], None] = lambda: None,
    orphan_s: float = 5.0,
  ):
    self._player = player
    self._pages = pages
    self._on_orphaned = on_orphaned
    self._orphan_s = float(orphan_s)
    self.interrupted = False  # Ctrl-C: no sync waits until the stream ends
    self._alone_since: Optional[float] = None  # sync with no page since
    self._ready = ready
    self._on_start = on_start
    self._on_progress = on_progress
    self.wanted = mode  # what the page (or Python) asks for
    self.trainer_mode: Optional[Mode] = None  # what the trainer runs in
    self.started = False  # a stream started (a trainer said what it sends)
    self.ended = False
    # Whether the run can still be heard (a viewer server's run: its link).
    self.connected: Callable[[], bool] = lambda: True
    self.empty_note = "Call viewer.init(env) to draw envs."
    self.phase: Optional[str] = None  # compiling, training, evaluating, done
    self.phase_since = 0.0
    self.env_steps = 0  # the newest training env steps seen
    self.received = RateMeter()  # frames received per second
    self.step_rate = RateMeter(window=20.0)  # training env steps per second

  def _saw_steps(self, env_steps: int) -> None:
    if env_steps > self.env_steps:
      self.step_rate.add(env_steps - self.env_steps)
      self.env_steps = int(env_steps)

  # -- TrainingViewer --------------------------------------------------------

  def requested_envs(self) -> Optional[int]:
    return None  # the viewer asks (see WebViewerBatched.requested_envs)

  @property
  def mode(self) -> Mode:
    return self.wanted if self._ready() else Mode.OFF

  def interrupt(self) -> None:
    """Stop every sync wait of this stream (Ctrl-C): the trainer's thread
    gets back to Python, where the KeyboardInterrupt is raised."""
    self.interrupted = True
    self._player.release_all()

  def on_stream_start(self, info: StreamInfo) -> None:
    self.started, self.ended = True, False
    self.interrupted = False
    self.env_steps = 0
    self.step_rate.clear()
    self._on_start(info)

  def on_chunk(self, chunk: FrameChunk) -> None:
    if not self._ready():
      return
    self.received.add(chunk.num_steps)
    if chunk.source == "train":
      self._saw_steps(chunk.env_steps)
    sync = self.wanted == Mode.SYNC and not self.interrupted
    if not sync:
      self._alone_since = None  # counts only while sync waits
    ticket = self._player.offer(chunk, sync=sync)
    if ticket is None:
      return
    while not ticket.wait(0.05):
      if self.wanted != Mode.SYNC or self.interrupted or not self._ready():
        return
      if self._orphaned():
        return

  def _orphaned(self) -> bool:
    """Sync with no page open for ``orphan_s`` (counted across chunks):
    fall back to live. True when it did."""
    now = time.monotonic()
    if self._pages() > 0:
      self._alone_since = None
    elif self._alone_since is None:
      self._alone_since = now
    elif now - self._alone_since > self._orphan_s:
      self._alone_since = None
      self.wanted = Mode.LIVE
      self._player.release_all()
      self._on_orphaned()
      return True
    return False

  def on_progress(self, env_steps: int, metrics: Mapping[str, float]) -> None:
    self._saw_steps(int(env_steps))
    self._on_progress(int(env_steps), metrics)

  def on_trainer_mode(self, mode: Mode) -> None:
    self.trainer_mode = Mode.parse(mode)

  def on_phase(self, phase: str) -> None:
    self.phase, self.phase_since = str(phase), time.monotonic()

  def stats(self) -> Dict[str, float]:
    """What the feed adds to the viewer's counters."""
    return dict(
      received_per_s=self.received.rate(),
      env_steps=self.env_steps,
      env_steps_per_s=self.step_rate.rate(),
    )

  def status(
    self, stats: Mapping[str, Any], player: Player, has_model: bool
  ) -> Status:
    """The status block's contents."""
    state = self.state()
    note = "Paused." if player.paused else ""
    if state in (run_state.COMPILING, run_state.LOST):
      note = run_state.MEANING[state].capitalize() + "."
    if not has_model:
      note = self.empty_note
    return Status.of(
      stats,
      self.trainer_mode.value if self.trainer_mode else None,
      self.wanted.value,
      player.source,
      note,
      state=state,
      state_text=self.state_text(state),
    )

  def state(self) -> str:
    """The run's state, one name (:func:`~braxviewer.core.run_state.run_state`)."""
    return run_state.run_state(
      self.phase or "",
      started=self.started,
      ended=self.ended,
      connected=self.connected(),
    )

  def state_text(self, state: str) -> str:
    """``"compiling, 42 s"``, ``"training"``, ``"finished"``, ..."""
    if state == run_state.COMPILING:
      return f"compiling, {time.monotonic() - self.phase_since:.0f} s"
    return state

  def reset_counts(self, env_steps: int = 0) -> None:
    """Start the counts and rates afresh (another run is shown)."""
    self.env_steps = int(env_steps)
    self.received.clear()
    self.step_rate.clear()

  def show_run(
    self,
    *,
    started: bool,
    ended: bool,
    phase: Optional[str],
    trainer_mode: Optional[Mode],
    env_steps: int,
  ) -> None:
    """Take on another run's facts (a viewer server switched runs)."""
    self.started, self.ended = started, ended
    self.phase, self.phase_since = phase, time.monotonic()
    self.trainer_mode = trainer_mode
    self.reset_counts(env_steps)

  def on_stream_end(self) -> None:
    self.ended = True
    self._player.release_all()
