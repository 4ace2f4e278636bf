"""The suite's own harness: a script that hangs fails its test, with what it
printed; it never hangs CI (a demo once hung for good at start-up)."""

from __future__ import annotations

import time

import pytest


def test_a_child_that_hangs_fails_its_wait_with_its_output(spawn):
  child = spawn(
    ["-c", "print('started', flush=True); import time; time.sleep(600)"]
  )
  child.wait_for("started", timeout=60)
  t0 = time.monotonic()
  with pytest.raises(pytest.fail.Exception, match="within 1 s(.|\n)*started"):
    child.wait_for("never printed", timeout=1)
  assert time.monotonic() - t0 < 30
  assert not child.running()  # killed, not left behind


def test_a_child_that_ends_early_fails_the_wait_at_once(spawn):
  child = spawn(["-c", "import sys; print('bye', file=sys.stderr)"])
  with pytest.raises(pytest.fail.Exception, match="ended without(.|\n)*bye"):
    child.wait_for("never printed", timeout=120)


def test_ctrl_c_reaches_the_child(spawn):
  child = spawn(
    [
      "-c",
      "import time\ntry:\n  print('ready', flush=True); time.sleep(600)\n"
      "except KeyboardInterrupt:\n  print('interrupted', flush=True)",
    ]
  )
  child.wait_for("ready", timeout=60)
  child.interrupt()
  assert child.finish(timeout=60) == 0
  assert "interrupted" in child.stdout
