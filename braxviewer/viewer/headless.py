"""A viewer with no display: keeps streamed chunks in memory.

For tests, benchmarks and scripts that want the stream without a browser.
"""

from __future__ import annotations

import collections
import threading
from typing import Deque, Iterable, List, Mapping, Optional, Tuple

from braxviewer.core.frames import FrameChunk
from braxviewer.core.protocol import Mode, StreamInfo
from braxviewer.viewer.base import Viewer


class HeadlessViewer(Viewer):
  """The in-memory backend (:class:`~braxviewer.viewer.base.Viewer`): what
  a trainer streams, or a Python loop pushes, kept in lists.

  Args:
    num_envs: envs to stream (None: the trainer picks min(16, per device)).
    mode: initial mode, ``"off"``, ``"live"`` or ``"sync"``.
    max_chunks: keep at most this many chunks (oldest dropped); None keeps all.
    info_keys: the ``state.info`` entries to stream (``FrameChunk.info``);
      None lets the trainer choose (numeric per-env entries, at most 16
      numbers per env, ``command`` first); ``()`` streams none.
    stream_source: ``(process_index, local_device_index)`` to stream from
      (None: ``(0, 0)``); a plain attribute, settable while training runs.
  """

  def __init__(
    self,
    num_envs: Optional[int] = None,
    mode: "Mode | str" = Mode.LIVE,
    max_chunks: Optional[int] = None,
    info_keys: Optional[Iterable[str]] = None,
    stream_source: Optional[Tuple[int, int]] = None,
  ):
    super().__init__(num_envs, info_keys, stream_source)
    self._mode = Mode.parse(mode)
    self._lock = threading.Lock()
    self.chunks: Deque[FrameChunk] = collections.deque(maxlen=max_chunks)
    self.progress: List[Tuple[int, dict]] = []
    self.trainer_modes: List[Mode] = []
    self.phases: List[str] = []  # compiling, training, evaluating, done
    # the (process, device) the trainer streamed from, once per change
    self.stream_sources: List[Tuple[int, int]] = []
    self.stream_info: Optional[StreamInfo] = None
    self.ended = False

  @property
  def mode(self) -> Mode:
    return self._mode

  def set_mode(self, mode: "Mode | str") -> None:
    """Switch streaming mode; the trainer picks it up within ~1 s."""
    self._mode = Mode.parse(mode)

  def on_stream_start(self, info: StreamInfo) -> None:
    self.stream_info = info
    self.ended = False

  def on_chunk(self, chunk: FrameChunk) -> None:
    with self._lock:
      self.chunks.append(chunk)

  def on_progress(self, env_steps: int, metrics: Mapping[str, float]) -> None:
    with self._lock:
      self.progress.append((int(env_steps), dict(metrics)))

  def on_phase(self, phase: str) -> None:
    with self._lock:
      self.phases.append(phase)

  def on_trainer_mode(self, mode: Mode) -> None:
    with self._lock:
      if not self.trainer_modes or self.trainer_modes[-1] != mode:
        self.trainer_modes.append(mode)

  def on_stream_source(self, process: int, device: int) -> None:
    with self._lock:
      self.stream_sources.append((int(process), int(device)))

  def on_stream_end(self) -> None:
    self.ended = True
