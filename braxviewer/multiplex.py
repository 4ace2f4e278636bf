"""``FanOut``: one stream, several viewers (e.g. the web page and a recorder).

The trainer sees one :class:`~braxviewer.protocol.TrainingViewer`. The
stream runs in the most demanding mode any viewer asks for (sync > live >
off); each chunk goes to every viewer that wants one (non-blocking viewers
first, so a sync viewer's wait does not delay them). A viewer that raises is
switched off with one warning; the others go on. No JAX.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, List, Mapping, Optional

from braxviewer.frames import FrameChunk
from braxviewer.protocol import Mode, StreamInfo, TrainingViewer

_RANK = {Mode.OFF: 0, Mode.LIVE: 1, Mode.SYNC: 2}


class FanOutWarning(RuntimeWarning):
  """A viewer behind a :class:`FanOut` raised and was switched off."""


class FanOut:
  """Forwards one training stream to several viewers.

  Args:
    *viewers: the viewers; the first one that asks for a number of envs
      sets it (they all receive the same chunks).

  Raises:
    ValueError: with no viewer, or when viewers ask for different numbers
      of envs.
  """

  def __init__(self, *viewers: TrainingViewer):
    if not viewers:
      raise ValueError("FanOut needs at least one viewer.")
    wanted = {v.requested_envs() for v in viewers} - {None}
    if len(wanted) > 1:
      raise ValueError(
          f"The viewers ask for different numbers of envs ({sorted(wanted)});"
          " give them the same num_envs.")
    self.viewers: List[TrainingViewer] = list(viewers)
    self._failed: List[bool] = [False] * len(viewers)

  def _call(self, i: int, name: str, fn: Callable[..., Any], *args) -> Any:
    if self._failed[i]:
      return None
    try:
      return fn(*args)
    except Exception as err:  # pylint: disable=broad-except
      self._failed[i] = True
      warnings.warn(
          f"braxviewer: {type(self.viewers[i]).__name__} raised in {name}"
          f" ({type(err).__name__}: {err}); it is off for the rest of this"
          " run, the other viewers and training go on.", FanOutWarning,
          stacklevel=3)
      return None

  def _each(self, name: str, *args) -> None:
    for i, v in enumerate(self.viewers):
      self._call(i, name, getattr(v, name), *args)

  def _modes(self) -> List[Mode]:
    out = []
    for i, v in enumerate(self.viewers):
      mode = self._call(i, "mode", lambda v=v: Mode.parse(v.mode))
      out.append(Mode.OFF if mode is None else mode)
    return out

  def requested_envs(self) -> Optional[int]:
    for v in self.viewers:
      n = v.requested_envs()
      if n is not None:
        return n
    return None

  @property
  def mode(self) -> Mode:
    return max(self._modes(), key=_RANK.__getitem__)

  def on_stream_start(self, info: StreamInfo) -> None:
    self._each("on_stream_start", info)

  def on_chunk(self, chunk: FrameChunk) -> None:
    modes = self._modes()
    order = sorted(range(len(self.viewers)),
                   key=lambda i: modes[i] == Mode.SYNC)
    for i in order:
      if modes[i] != Mode.OFF:
        self._call(i, "on_chunk", self.viewers[i].on_chunk, chunk)

  def on_progress(self, env_steps: int, metrics: Mapping[str, float]) -> None:
    self._each("on_progress", env_steps, metrics)

  def on_trainer_mode(self, mode: Mode) -> None:
    self._each("on_trainer_mode", mode)

  def on_stream_end(self) -> None:
    self._each("on_stream_end")

  def init(self, env: Any) -> "FanOut":
    """``init(env)`` on every viewer that has it."""
    for i, v in enumerate(self.viewers):
      if hasattr(v, "init"):
        self._call(i, "init", v.init, env)
    return self

  def close(self) -> None:
    """``close()`` on every viewer that has it."""
    for i, v in enumerate(self.viewers):
      if hasattr(v, "close"):
        self._call(i, "close", v.close)
