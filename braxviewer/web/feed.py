"""The page's end of a training stream.

:class:`LiveFeed` is a :class:`~braxviewer.protocol.TrainingViewer` that
hands each chunk to the :class:`~braxviewer.web.pacing.Player` (in sync
mode it waits until the chunk was shown, or until waiting no longer makes
sense), keeps the counts and rates the status block shows, and passes
progress on. It never touches a widget. No JAX.
"""

from __future__ import annotations

from typing import Callable, Mapping, Optional

from braxviewer.frames import FrameChunk
from braxviewer.protocol import Mode, StreamInfo
from braxviewer.web.meters import RateMeter
from braxviewer.web.pacing import Player


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
  """

  def __init__(
    self,
    player: Player,
    *,
    mode: Mode,
    ready: Callable[[], bool],
    on_start: Callable[[StreamInfo], None],
    on_progress: Callable[[int, Mapping[str, float]], None],
  ):
    self._player = player
    self._ready = ready
    self._on_start = on_start
    self._on_progress = on_progress
    self.wanted = mode  # what the page (or Python) asks for
    self.trainer_mode: Optional[Mode] = None  # what the trainer runs in
    self.ended = False
    self.env_steps = 0  # the newest training env steps seen
    self.received = RateMeter()  # frames received per second
    self.step_rate = RateMeter(window=20.0)  # training env steps per second

  def _saw_steps(self, env_steps: int) -> None:
    if env_steps > self.env_steps:
      self.step_rate.add(env_steps - self.env_steps)
      self.env_steps = int(env_steps)

  # -- TrainingViewer --------------------------------------------------------

  def requested_envs(self) -> Optional[int]:
    return None  # the viewer asks (see WebViewerBase.requested_envs)

  @property
  def mode(self) -> Mode:
    return self.wanted if self._ready() else Mode.OFF

  def on_stream_start(self, info: StreamInfo) -> None:
    self.ended = False
    self.env_steps = 0
    self.step_rate.clear()
    self._on_start(info)

  def on_chunk(self, chunk: FrameChunk) -> None:
    if not self._ready():
      return
    self.received.add(chunk.num_steps)
    if chunk.source == "train":
      self._saw_steps(chunk.env_steps)
    ticket = self._player.offer(chunk, sync=self.wanted == Mode.SYNC)
    if ticket is None:
      return
    while not ticket.wait(0.05):
      if self.wanted != Mode.SYNC or not self._ready():
        return

  def on_progress(self, env_steps: int, metrics: Mapping[str, float]) -> None:
    self._saw_steps(int(env_steps))
    self._on_progress(int(env_steps), metrics)

  def on_trainer_mode(self, mode: Mode) -> None:
    self.trainer_mode = Mode.parse(mode)

  def on_stream_end(self) -> None:
    self.ended = True
    self._player.release_all()
