"""Ctrl-C reaches a training run that waits for the page.

In sync mode the trainer's device call waits inside a host callback until
the page has shown a chunk. Python runs its Ctrl-C handler only when the
main thread runs Python again, and it is stuck in that device call, so the
KeyboardInterrupt would wait too. :class:`InterruptWatch` sees the signal at
once, through the signal wakeup fd that Python's C-level handler writes to,
and ends the waits; the device call then returns and the main thread raises
KeyboardInterrupt as usual. It stands aside when the main thread already has
a wakeup fd (an asyncio loop, braxviewer's own CLI) or its own SIGINT handler.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
from typing import Callable, Optional


class InterruptWatch:
  """Calls ``on_interrupt()`` from a helper thread on every Ctrl-C.

  Args:
    on_interrupt: what to do (must be quick and thread-safe).
  """

  def __init__(self, on_interrupt: Callable[[], None]):
    self._on_interrupt = on_interrupt
    self._read: Optional[socket.socket] = None
    self._write: Optional[socket.socket] = None
    self._thread: Optional[threading.Thread] = None

  def start(self) -> bool:
    """Watch, when this is the main thread and nobody else does; returns
    whether it watches."""
    if threading.current_thread() is not threading.main_thread():
      return False
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
      return False  # the program handles Ctrl-C itself
    read, write = socket.socketpair()
    write.setblocking(False)
    previous = signal.set_wakeup_fd(write.fileno(), warn_on_full_buffer=False)
    if previous != -1:  # someone else listens: leave the signal to them
      signal.set_wakeup_fd(previous)
      read.close()
      write.close()
      return False
    self._read, self._write = read, write
    self._thread = threading.Thread(
      target=self._watch, name="braxviewer-ctrl-c", daemon=True
    )
    self._thread.start()
    return True

  def _watch(self) -> None:
    read = self._read
    while read is not None:
      try:
        data = read.recv(64)
      except OSError:
        return
      if not data:  # stop() closed the other end
        return
      if signal.SIGINT in data:
        with contextlib.suppress(Exception):
          self._on_interrupt()

  def stop(self) -> None:
    """Stop watching and give the wakeup fd back (from the main thread;
    elsewhere the fd stays set and the sockets open, harmlessly)."""
    write = self._write
    if write is None:
      return
    try:
      mine = signal.set_wakeup_fd(-1)
    except ValueError:  # not the main thread: Python does not allow it
      return
    if mine != write.fileno():  # someone took it since: put theirs back
      signal.set_wakeup_fd(mine)
    self._write = None
    write.close()
    if self._thread is not None:
      self._thread.join(timeout=2.0)
    if self._read is not None:
      self._read.close()
      self._read = None
