"""One name per run state, on every page (the live page, the server's)."""

from __future__ import annotations

from braxviewer.core import run_state as rs
from braxviewer.web.panels import Status


def test_each_state_is_named_from_the_same_facts():
  assert rs.run_state() == rs.WAITING
  assert rs.run_state("compiling") == rs.COMPILING
  assert rs.run_state("", started=True) == rs.TRAINING  # a push loop
  assert rs.run_state("evaluating", started=True) == rs.EVALUATING
  assert rs.run_state("done", started=True, ended=True) == rs.FINISHED
  assert rs.run_state("training", started=True, ended=True) == rs.ENDED
  assert rs.run_state("training", started=True, connected=False) == rs.LOST
  # an ended run stays what it was when its link drops afterwards
  assert (
    rs.run_state("done", started=True, ended=True, connected=False)
    == rs.FINISHED
  )
  assert set(rs.MEANING) == set(rs.STATES)


def _status(state: str, trainer: str = "live", wanted: str = "live") -> str:
  stats = dict(
    env_steps=1234,
    env_steps_per_s=10.0,
    received_per_s=0.0,
    shown_per_s=0.0,
    frames_dropped=0,
    latency_s=None,
  )
  return Status.of(stats, trainer, wanted, "train", state=state).markdown()


def test_the_status_names_the_state_once_and_streaming_only_while_it_runs():
  text = _status(rs.TRAINING)
  assert "**Training:** training" in text and "**Streaming:** `live`" in text
  assert text.count("training") == 1  # not "Trainer: training · streams"
  assert "switching to off" in _status(rs.TRAINING, "live", "off")
  for gone in (rs.FINISHED, rs.ENDED, rs.LOST, rs.WAITING):
    text = _status(gone)
    assert f"**Training:** {gone}" in text and "Streaming" not in text
