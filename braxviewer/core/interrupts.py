"""Ctrl-C, seen at once: one watcher for the whole process.

Python runs its Ctrl-C handler only when the main thread runs Python again.
A training run's main thread spends its time in device calls and XLA
compiles, so a plain KeyboardInterrupt waits for them (and JAX can drop one
that lands in its garbage-collector callback). Those who must act at once
(a sync wait to end, a training to stop, a CLI to leave) subscribe here:
one helper thread reads the signal wakeup fd that Python's C-level handler
writes to, and calls every subscriber on each Ctrl-C. The hub stands aside
when the main thread already has a wakeup fd of somebody else's (an asyncio
loop) and when the program handles Ctrl-C itself (its own SIGINT handler).
No JAX.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import signal
import socket
import sys
import threading
from typing import Callable, Dict, NoReturn, Optional


class _Hub:
  """The wakeup fd, its reader thread and the subscribers."""

  def __init__(self) -> None:
    self._lock = threading.Lock()
    self._subscribers: Dict[int, Callable[[], None]] = {}
    self._ids = itertools.count()
    self._read: Optional[socket.socket] = None
    self._write: Optional[socket.socket] = None
    self._thread: Optional[threading.Thread] = None

  def subscribe(self, fn: Callable[[], None], claim: bool = False) -> int:
    """Call ``fn()`` on every Ctrl-C; returns its id (-1: cannot watch:
    not the main thread, or somebody else watches). ``claim``: also when
    the program has a SIGINT handler of its own (a trainer that just set
    its own handler)."""
    if threading.current_thread() is not threading.main_thread():
      return -1
    with self._lock:
      if self._write is None:
        if not claim and (
          signal.getsignal(signal.SIGINT) is not signal.default_int_handler
        ):
          return -1  # the program handles Ctrl-C itself
        read, write = socket.socketpair()
        write.setblocking(False)
        previous = signal.set_wakeup_fd(
          write.fileno(), warn_on_full_buffer=False
        )
        if previous != -1:  # someone else listens: leave the signal to them
          signal.set_wakeup_fd(previous)
          read.close()
          write.close()
          return -1
        self._read, self._write = read, write
        self._thread = threading.Thread(
          target=self._watch,
          args=(read,),
          name="braxviewer-ctrl-c",
          daemon=True,
        )
        self._thread.start()
      key = next(self._ids)
      self._subscribers[key] = fn
      return key

  def unsubscribe(self, key: int) -> None:
    """Stop calling subscriber ``key``; the last one gives the wakeup fd
    back (from the main thread; elsewhere it stays set, harmlessly)."""
    with self._lock:
      if self._subscribers.pop(key, None) is None or self._subscribers:
        return
      write, read, thread = self._write, self._read, self._thread
      if write is None:
        return
      try:
        mine = signal.set_wakeup_fd(-1)
      except ValueError:  # not the main thread: Python does not allow it
        return
      if mine != write.fileno():  # someone took it since: put theirs back
        signal.set_wakeup_fd(mine)
      self._write = self._read = self._thread = None
    write.close()  # the reader sees EOF and returns
    if thread is not None:
      thread.join(timeout=2.0)
    if read is not None:
      read.close()

  def watching(self) -> bool:
    return self._write is not None

  def _watch(self, read: socket.socket) -> None:
    while True:
      try:
        data = read.recv(64)
      except OSError:
        return
      if not data:
        return
      for _ in range(data.count(signal.SIGINT)):
        with self._lock:
          subscribers = list(self._subscribers.values())
        for fn in subscribers:
          with contextlib.suppress(Exception):
            fn()


_HUB = _Hub()


def watching() -> bool:
  """Whether Ctrl-C is seen at once now (some subscriber watches)."""
  return _HUB.watching()


class InterruptWatch:
  """Calls ``on_interrupt()`` from a helper thread on every Ctrl-C.

  Args:
    on_interrupt: what to do (must be quick and thread-safe).
    claim: watch also when the program has its own SIGINT handler.
  """

  def __init__(self, on_interrupt: Callable[[], None], claim: bool = False):
    self._on_interrupt = on_interrupt
    self._claim = claim
    self._key = -1

  def start(self) -> bool:
    """Watch, when this is the main thread and nobody else does; returns
    whether it watches."""
    if self._key < 0:
      self._key = _HUB.subscribe(self._on_interrupt, self._claim)
    return self._key >= 0

  @property
  def watching(self) -> bool:
    """Whether this watch gets Ctrl-C now."""
    return self._key >= 0

  def stop(self) -> None:
    """Stop watching (the last watcher gives the wakeup fd back)."""
    key, self._key = self._key, -1
    if key >= 0:
      _HUB.unsubscribe(key)


def leave_now(code: int) -> NoReturn:
  """End the program after Ctrl-C, promptly: its exit handlers run
  (viewers close, recordings flush), then it leaves without the
  interpreter's final garbage collection, which takes seconds for JAX's
  objects and changes nothing."""
  with contextlib.suppress(BaseException):
    atexit._run_exitfuncs()
  for stream in (sys.stdout, sys.stderr):
    with contextlib.suppress(BaseException):
      stream.flush()
  os._exit(code)
