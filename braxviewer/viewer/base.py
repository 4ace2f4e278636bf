"""What every viewer backend is: :class:`Viewer`.

A backend (the in-process web page, the connection to a viewer server, the
in-memory headless viewer, any new one) is one subclass of :class:`Viewer`.
It says what it does with the stream through the trainer's protocol
(:class:`~braxviewer.core.protocol.TrainingViewer`: the abstract ``mode``,
``on_stream_start``, ``on_chunk``, ``on_progress``, and the optional
``on_*`` hooks, no-ops here), and what starting and stopping mean through
two explicit hooks, :meth:`Viewer._on_init` and :meth:`Viewer._on_close`.
Everything else is shared and composed, not inherited: a Python training
loop's ``push``/``log`` go to the viewer's :class:`~braxviewer.viewer.push.Pusher`
(:attr:`Viewer.pushes`). No JAX, no web.
"""

from __future__ import annotations

import abc
from typing import Any, Iterable, Mapping, Optional, Tuple, TypeVar

from braxviewer.core.frames import FrameChunk
from braxviewer.core.protocol import (
  Mode,
  StreamInfo,
  check_info_keys,
  check_num_envs,
)
from braxviewer.viewer.push import Pusher

V = TypeVar("V", bound="Viewer")


class Viewer(abc.ABC):
  """A viewer backend: what ``ppo.train(viewer=...)``, ``sac.train``,
  ``braxviewer.wrap`` and a Python loop's ``viewer.push(state)`` stream to.

  Args:
    num_envs: envs to stream (None: the trainer chooses, min(16, per
      device)).
    info_keys: the ``state.info`` entries to stream (e.g. ``("command",)``);
      None lets the trainer choose (numeric per-env entries, at most 16
      numbers per env, ``command`` first); ``()`` streams none.
    stream_source: ``(process, local_device)`` to stream from under
      ``pmap`` or ``jax.distributed`` (None: process 0, device 0); a plain
      attribute, read by the trainer between device calls (no recompile).

  Subclasses implement the abstract trainer hooks and may override the
  optional ones (``on_trainer_mode``, ``on_phase``, ``on_stream_source``,
  ``on_stream_end``, ``requested_envs``) and the lifecycle hooks
  :meth:`_on_init`, :meth:`_on_close`; :meth:`run` starts what the backend
  serves (nothing here).
  """

  def __init__(
    self,
    num_envs: Optional[int] = None,
    info_keys: Optional[Iterable[str]] = None,
    stream_source: Optional[Tuple[int, int]] = None,
  ):
    self.num_envs: Optional[int] = check_num_envs(num_envs)
    self.info_keys: Optional[Tuple[str, ...]] = check_info_keys(info_keys)
    self._stream_source = stream_source
    self.pushes = Pusher(self)  # a Python loop's states, as chunks
    self._closing = False  # close() began
    self._closed = False  # close() ended (the backend may set it sooner)

  @property
  def stream_source(self) -> Optional[Tuple[int, int]]:
    """``(process, local_device)`` to stream from (None: ``(0, 0)``);
    settable while training runs."""
    return self._stream_source

  @stream_source.setter
  def stream_source(self, value: Optional[Tuple[int, int]]) -> None:
    self._stream_source = value

  # -- the trainer's protocol ------------------------------------------------------

  @property
  @abc.abstractmethod
  def mode(self) -> Mode:
    """The mode wanted now; read by the trainer between device calls."""

  @abc.abstractmethod
  def on_stream_start(self, info: StreamInfo) -> None:
    """A stream starts (once per training run, before any chunk)."""

  @abc.abstractmethod
  def on_chunk(self, chunk: FrameChunk) -> None:
    """One chunk; never blocks in live, blocks in sync until shown."""

  @abc.abstractmethod
  def on_progress(self, env_steps: int, metrics: Mapping[str, float]) -> None:
    """Training progress (eval reward, speed, losses, ...)."""

  def requested_envs(self) -> Optional[int]:
    """Envs to stream; None lets the trainer choose."""
    return self.num_envs

  def on_trainer_mode(self, mode: Mode) -> None:
    """The mode the trainer actually runs in now."""
    return None  # optional: nothing by default

  def on_phase(self, phase: str) -> None:
    """What the run does now (compiling, training, evaluating, done)."""
    return None  # optional: nothing by default

  def on_stream_source(self, process: int, device: int) -> None:
    """The (process, device) the trainer streams from, on each change."""
    return None  # optional: nothing by default

  def on_stream_end(self) -> None:
    """The stream ended (also on error)."""
    return None  # optional: nothing by default

  # -- the user's side --------------------------------------------------------------

  def run(self: V) -> V:
    """Start what this viewer serves (if anything); returns the viewer."""
    return self

  def init(self: V, env: Any) -> V:
    """Set what is streamed and drawn: a brax or MuJoCo Playground env, an
    ``MjModel`` or MJCF; its ``dt`` paces ``push``."""
    self.pushes.note_env(env)
    self._on_init(env)
    return self

  def close(self) -> None:
    """End a pushed stream (its last frames, then its end), then stop the
    backend; training is not affected. Closing twice is a no-op."""
    if self._closing:
      return
    self._closing = True
    self.pushes.close()  # while the backend still takes chunks
    self._on_close()
    self._closed = True

  def stop(self) -> None:
    """The same as :meth:`close` (the original API's name)."""
    self.close()

  def wait(self, say: bool = True) -> None:
    """Keep what the viewer serves until Ctrl-C (or the page's *Close the
    viewer*), then close. A backend that serves nothing closes at once.
    ``say``: print where the page is and how to quit."""
    del say
    self.close()

  def __enter__(self: V) -> V:
    return self.run()

  def __exit__(self, *exc: Any) -> None:
    self.close()

  # -- a Python training loop (the Pusher's own methods) ----------------------------

  @property
  def push(self):
    """``viewer.push(state, *, env_steps=None, dt=None, env=None,
    chunk_length=None)``: :meth:`Pusher.push <braxviewer.viewer.push.Pusher.push>`."""
    return self.pushes.push

  @property
  def push_arrays(self):
    """``viewer.push_arrays(*, reward, done, qpos=None, ...)``:
    :meth:`Pusher.push_arrays <braxviewer.viewer.push.Pusher.push_arrays>`."""
    return self.pushes.push_arrays

  @property
  def log(self):
    """``viewer.log(env_steps, metrics)``: :meth:`Pusher.log
    <braxviewer.viewer.push.Pusher.log>`."""
    return self.pushes.log

  @property
  def flush(self):
    """``viewer.flush()``: :meth:`Pusher.flush
    <braxviewer.viewer.push.Pusher.flush>`."""
    return self.pushes.flush

  # -- lifecycle hooks ---------------------------------------------------------------

  def _on_init(self, env: Any) -> None:
    """The backend's part of :meth:`init` (e.g. build the page's scene)."""
    return None  # optional: nothing by default

  def _on_close(self) -> None:
    """The backend's part of :meth:`close`, after the pushed stream ended
    (``_closed`` is set once it returns)."""
    return None  # optional: nothing by default
