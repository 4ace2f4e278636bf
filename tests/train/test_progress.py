"""The trainer's progress bar: the run's real total, never past it, the
phase it is in, and off when asked or when stderr is no terminal."""

from __future__ import annotations

import io

from braxviewer.train.progress import ProgressBar


def test_bar_stops_at_the_total_and_says_done():
  out = io.StringIO()
  bar = ProgressBar(460_800, enabled=True, stream=out)
  bar.update(5_120)  # the first call (and its compile) is over
  bar.phase("evaluating")
  bar.update(1_000_000)  # more than the run will do: capped
  assert bar.done == bar.total == 460_800
  bar.close()
  text = out.getvalue()
  assert "done" in text and "460800/460800" in text.replace(",", "")


def test_bar_is_off_when_asked_or_not_on_a_terminal():
  out = io.StringIO()  # not a terminal
  for bar in (ProgressBar(100, stream=out), ProgressBar(100, enabled=False)):
    bar.update(50)
    bar.close()
    assert not bar.enabled and bar.done == 50
  assert out.getvalue() == ""
