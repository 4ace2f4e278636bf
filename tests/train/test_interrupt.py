"""Ctrl-C during a training run: seen at once, said in one line, the run
stopped at the next check, no traceback (in-process: the signal is real)."""

from __future__ import annotations

import os
import signal

import pytest

from braxviewer.train import interrupt


def _press() -> None:
  os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_is_seen_at_once_and_stops_the_run_at_the_next_check(
  wait_until,
):
  said = []
  with pytest.raises(KeyboardInterrupt) as stopped:
    with interrupt.StopOnInterrupt(say=said.append) as hold:
      assert interrupt.current() is hold
      hold.note_phase("training")
      _press()
      # the watcher thread sees it, while the main thread has not yet
      # run Python's handler
      assert wait_until(lambda: said, timeout=5)
      assert hold.requested
      hold.check()
      pytest.fail("check() did not stop the run")
  assert said == ["\nbraxviewer: Ctrl-C: stopping training..."]
  assert stopped.value._render_traceback_() == [interrupt.STOPPED]  # IPython
  assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
  assert interrupt.current() is not hold


def test_a_compile_is_named_and_a_press_as_the_run_ends_still_stops(
  wait_until,
):
  said = []
  with pytest.raises(KeyboardInterrupt):
    with interrupt.StopOnInterrupt(say=said.append):  # compiling from start
      _press()
      assert wait_until(lambda: said, timeout=5)
  assert "stopping after the compile" in said[0]
  assert "cannot be interrupted" in said[0]


def test_a_program_that_handles_ctrl_c_itself_keeps_it():
  presses = []
  previous = signal.signal(signal.SIGINT, lambda *a: presses.append(a))
  try:
    with interrupt.StopOnInterrupt(say=lambda line: None) as hold:
      assert not hold.active
      _press()
      hold.check()  # not ours: no stop
    assert presses
  finally:
    signal.signal(signal.SIGINT, previous)


def test_trainers_hold_ctrl_c_with_their_signature_intact():
  import inspect

  from braxviewer.train import ppo, sac

  for trainer in (ppo.train, sac.train):
    assert "viewer" in inspect.signature(trainer).parameters
    assert trainer.__wrapped__.__name__ == "train"
