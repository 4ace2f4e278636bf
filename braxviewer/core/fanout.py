"""``FanOut``: one stream, several viewers (e.g. the web page and a recorder).

The trainer sees one :class:`~braxviewer.core.protocol.TrainingViewer`. The
stream runs in the most demanding mode any viewer asks for (sync > live >
off), or in the mode of one *lead* viewer when there is one (a web page
whose recorder keeps what the page streams); each chunk goes to every viewer
that wants one (non-blocking viewers first, so a sync viewer's wait does not
delay them). A viewer added mid-run is caught up (its model, the stream's
info). A viewer that raises is switched off with one warning; the others go
on. No JAX.
"""

from __future__ import annotations

from typing import Any, Callable, List, Mapping, Optional, Tuple
import warnings

from braxviewer.core.frames import FrameChunk
from braxviewer.core.protocol import Mode, StreamInfo, TrainingViewer


def _info_keys(viewer: Any) -> Optional[Tuple[str, ...]]:
  keys = getattr(viewer, "info_keys", None)  # optional: not in the protocol
  return None if keys is None else tuple(keys)


class FanOutWarning(RuntimeWarning):
  """A viewer behind a :class:`FanOut` raised and was switched off."""


class FanOut:
  """Forwards one training stream to several viewers.

  Args:
    *viewers: the viewers; the first one that asks for a number of envs
      sets it (they all receive the same chunks), and likewise for the
      ``state.info`` entries (``info_keys``).
    lead: the viewer whose mode is the stream's mode (None: the most
      demanding of all). The others receive what it lets through.

  Raises:
    ValueError: with no viewer, when viewers ask for different numbers of
      envs or different ``info_keys``, or when ``lead`` is not one of
      ``viewers``.
  """

  def __init__(
    self, *viewers: TrainingViewer, lead: Optional[TrainingViewer] = None
  ):
    if not viewers:
      raise ValueError("FanOut needs at least one viewer.")
    if lead is not None and not any(v is lead for v in viewers):
      raise ValueError("FanOut's lead must be one of its viewers.")
    self.viewers: List[TrainingViewer] = []
    self._failed: List[bool] = []
    self._lead = lead
    self._env: Any = None
    self._info: Optional[StreamInfo] = None
    for viewer in viewers:
      self.add(viewer)

  # -- membership --------------------------------------------------------------

  def add(self, viewer: TrainingViewer) -> None:
    """Forward the stream to ``viewer`` too, from now on; it gets the model
    (``init``) and the stream's info when those were given already.

    Raises:
      ValueError: ``viewer`` asks for another number of envs, or other
        ``state.info`` entries.
    """
    asked = (v.requested_envs() for v in self.viewers + [viewer])
    wanted = {n for n in asked if n is not None}
    if len(wanted) > 1:
      raise ValueError(
        f"The viewers ask for different numbers of envs ({sorted(wanted)});"
        " give them the same num_envs."
      )
    keys = {
      k for k in map(_info_keys, self.viewers + [viewer]) if k is not None
    }
    if len(keys) > 1:
      raise ValueError(
        f"The viewers ask for different state.info entries"
        f" ({sorted(keys)}); give them the same info_keys."
      )
    self.viewers.append(viewer)
    self._failed.append(False)
    i = len(self.viewers) - 1
    if self._env is not None:
      init = getattr(viewer, "init", None)  # optional: not in the protocol
      if init is not None:
        self._call(i, "init", init, self._env)
    if self._info is not None:
      self._call(i, "on_stream_start", viewer.on_stream_start, self._info)

  def remove(self, viewer: TrainingViewer) -> None:
    """Stop forwarding to ``viewer`` (the lead cannot be removed)."""
    if viewer is self._lead:
      raise ValueError("FanOut cannot remove its lead viewer.")
    for i, v in enumerate(self.viewers):
      if v is viewer:
        del self.viewers[i], self._failed[i]
        return

  # -- guarded calls -----------------------------------------------------------

  def _call(self, i: int, name: str, fn: Callable[..., Any], *args) -> Any:
    if self._failed[i]:
      return None
    try:
      return fn(*args)
    except Exception as err:  # a viewer never takes the stream down
      self._failed[i] = True
      warnings.warn(
        f"braxviewer: {type(self.viewers[i]).__name__} raised in {name}"
        f" ({type(err).__name__}: {err}); it is off for the rest of this"
        " run, the other viewers and training go on.",
        FanOutWarning,
        stacklevel=3,
      )
      return None

  def _each(self, name: str, *args) -> None:
    for i, v in enumerate(list(self.viewers)):
      self._call(i, name, getattr(v, name), *args)

  def _modes(self) -> List[Mode]:
    out = []
    for i, v in enumerate(self.viewers):
      mode = self._call(i, "mode", lambda v=v: Mode.parse(v.mode))
      out.append(Mode.OFF if mode is None else mode)
    return out

  # -- TrainingViewer ----------------------------------------------------------

  def requested_envs(self) -> Optional[int]:
    for v in self.viewers:
      n = v.requested_envs()
      if n is not None:
        return n
    return None

  @property
  def info_keys(self) -> Optional[Tuple[str, ...]]:
    """The ``state.info`` entries a viewer asks for (None: any)."""
    for v in self.viewers:
      keys = _info_keys(v)
      if keys is not None:
        return keys
    return None

  @property
  def mode(self) -> Mode:
    modes = self._modes()
    if self._lead is not None:
      return next(m for v, m in zip(self.viewers, modes) if v is self._lead)
    return max(modes, key=lambda m: m.flag)

  def on_stream_start(self, info: StreamInfo) -> None:
    self._info = info
    self._each("on_stream_start", info)

  def on_chunk(self, chunk: FrameChunk) -> None:
    modes = self._modes()
    order = sorted(
      range(len(self.viewers)), key=lambda i: modes[i] == Mode.SYNC
    )
    for i in order:
      if modes[i] != Mode.OFF:
        self._call(i, "on_chunk", self.viewers[i].on_chunk, chunk)

  def on_progress(self, env_steps: int, metrics: Mapping[str, float]) -> None:
    self._each("on_progress", env_steps, metrics)

  def on_trainer_mode(self, mode: Mode) -> None:
    self._each("on_trainer_mode", mode)

  def on_phase(self, phase: str) -> None:
    """The run's phase, to every viewer that has ``on_phase``."""
    for i, v in enumerate(list(self.viewers)):
      fn = getattr(v, "on_phase", None)
      if callable(fn):
        self._call(i, "on_phase", fn, phase)

  def on_stream_end(self) -> None:
    self._info = None
    self._each("on_stream_end")

  # -- lifecycle ---------------------------------------------------------------

  def init(self, env: Any) -> "FanOut":
    """``init(env)`` on every viewer that has it (and on any added later)."""
    self._env = env
    for i, v in enumerate(self.viewers):
      init = getattr(v, "init", None)
      if init is not None:
        self._call(i, "init", init, env)
    return self

  def close(self) -> None:
    """``close()`` on every viewer that has it."""
    for i, v in enumerate(self.viewers):
      close = getattr(v, "close", None)
      if close is not None:
        self._call(i, "close", close)
