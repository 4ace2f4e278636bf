"""Ctrl-C stops a training run promptly, in one line, in every phase.

While braxviewer's ``ppo.train`` or ``sac.train`` runs in the main thread,
:class:`StopOnInterrupt` holds Ctrl-C: the first press is seen at once (by
:mod:`braxviewer.core.interrupts`' watcher, also while the main thread is in
a device call or an XLA compile), says what happens in one line, and asks
the loop to stop; the loop :meth:`~StopOnInterrupt.check`\\ s between device
calls (about every half second with a viewer) and leaves with a
``KeyboardInterrupt`` that prints one line instead of a traceback, in a
script (``sys.excepthook``, which then ends the script at once: its exit
handlers run, the interpreter's slow final collection of JAX's objects
does not) and in IPython/Jupyter (``_render_traceback_``). A compile cannot be interrupted: the line says so, and the run stops right
after it. A second press leaves at once in a script (``os._exit(130)``).
No interrupt is lost: one that lands in JAX's garbage-collector callback
(jax-ml/jax#18246) is seen by the watcher, and one that comes as the run
ends still stops the program. The program's own SIGINT handler, or a run
outside the main thread, is left alone. Host side only: no JAX.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import threading
import time
from typing import Any, Callable, List, Optional, Tuple, TypeVar, cast

from braxviewer.core.interrupts import InterruptWatch, leave_now

STOPPED = "braxviewer: training stopped (Ctrl-C)."

# The runs holding Ctrl-C now (the CLI asks, to leave the talking to them).
_holding: List["StopOnInterrupt"] = []
_hook_installed: List[bool] = []


def holding() -> bool:
  """Whether a training run holds Ctrl-C now."""
  return bool(_holding)


def _in_ipython() -> bool:
  return "ipykernel" in sys.modules or "IPython" in sys.modules


def _one_line_hook(previous: Callable[..., Any]) -> Callable[..., Any]:
  def hook(kind: Any, value: BaseException, tb: Any) -> None:
    if not getattr(value, "_braxviewer_stop", False):
      previous(kind, value, tb)
      return
    print(str(value), file=sys.stderr, flush=True)
    leave_now(130)  # the script ends here: promptly

  return hook


def stop_exception() -> KeyboardInterrupt:
  """The KeyboardInterrupt a stopped run leaves with: it prints one line
  (a script's excepthook, IPython's ``_render_traceback_``)."""
  if not _hook_installed:
    _hook_installed.append(True)
    sys.excepthook = _one_line_hook(sys.excepthook)
  exc = KeyboardInterrupt(STOPPED)
  exc._braxviewer_stop = True  # type: ignore[attr-defined]
  exc._render_traceback_ = lambda: [STOPPED]  # type: ignore[attr-defined]
  exc.__suppress_context__ = True
  return exc


class StopOnInterrupt:
  """Holds Ctrl-C for the duration of a training run (``with`` block, or
  :func:`stops_on_ctrl_c` around a trainer; :func:`current` is the one
  held now, for the loop to :meth:`check` and to tell its phase).

  Args:
    say: where the line goes (stderr by default).
  """

  def __init__(self, say: Optional[Callable[[str], None]] = None):
    # The run's phase and since when: set up and compile first.
    self._phase: Tuple[str, float] = ("compiling", time.monotonic())
    self._say = say or (lambda line: print(line, file=sys.stderr, flush=True))
    self._presses = 0
    self._lock = threading.Lock()
    self._previous: Any = None
    self._watch: Optional[InterruptWatch] = None
    self.active = False

  def note_phase(self, name: str) -> None:
    """The run's phase now (``compiling``, ``training``, ...)."""
    self._phase = (name, time.monotonic())

  @property
  def requested(self) -> bool:
    """Whether Ctrl-C asked the run to stop."""
    return self._presses > 0

  def __enter__(self) -> "StopOnInterrupt":
    if threading.current_thread() is not threading.main_thread():
      return self
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
      return self  # the program handles Ctrl-C itself
    self._previous = signal.signal(signal.SIGINT, self._handler)
    self._watch = InterruptWatch(self._pressed, claim=True)
    self._watch.start()
    self.active = True
    _holding.append(self)
    return self

  def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
    if self.active:
      self.active = False
      if self in _holding:
        _holding.remove(self)
      if self._watch is not None:
        self._watch.stop()
      signal.signal(signal.SIGINT, self._previous)
    if kind is None and self.requested:
      raise stop_exception()  # it came as the run ended: still stop

  def check(self) -> None:
    """Between device calls: leave if Ctrl-C asked to."""
    if self.requested:
      raise stop_exception()

  # -- the presses -------------------------------------------------------------------

  def _handler(self, signum: int, frame: Any) -> None:
    """Python's handler (the main thread, once it runs Python): the watcher
    has counted the press already; without one, count it here."""
    watch = self._watch
    if watch is None or not watch.watching:
      self._pressed()

  def _pressed(self) -> None:
    with self._lock:
      self._presses += 1
      presses = self._presses
    if presses == 1:
      name, since = self._phase
      seconds = time.monotonic() - since
      if name == "compiling":
        self._say(
          "\nbraxviewer: Ctrl-C: stopping after the compile (XLA has"
          f" compiled for {seconds:.0f} s and cannot be interrupted);"
          " Ctrl-C again quits at once."
        )
      else:
        self._say("\nbraxviewer: Ctrl-C: stopping training...")
    elif presses == 2 and not _in_ipython():
      self._say("braxviewer: stopped at once (second Ctrl-C).")
      os._exit(130)
    elif presses == 2:
      self._say("braxviewer: still stopping (a compile cannot be interrupted).")


_QUIET = StopOnInterrupt(say=lambda line: None)  # when none is held
F = TypeVar("F", bound=Callable[..., Any])


def current() -> StopOnInterrupt:
  """The training run's hold on Ctrl-C now (a passive one when none)."""
  return _holding[-1] if _holding else _QUIET


def stops_on_ctrl_c(train: F) -> F:
  """``train`` (a trainer) holds Ctrl-C while it runs, from its set-up on."""

  @functools.wraps(train)
  def held(*args: Any, **kwargs: Any) -> Any:
    with StopOnInterrupt():
      return train(*args, **kwargs)

  return cast(F, held)
