"""What a training run is doing, in one word, for every status line.

The live page, the viewer server's page and its run list all name a run's
state from the same facts with :func:`run_state`, so one state has one name
everywhere. No JAX, no web.
"""

from __future__ import annotations

from typing import Dict

WAITING = "waiting"  # no stream yet: a trainer has not started
COMPILING = "compiling"  # XLA compiles; nothing moves yet
TRAINING = "training"
EVALUATING = "evaluating"
FINISHED = "finished"  # the trainer reached its last step
ENDED = "ended"  # the stream ended before that (stopped, failed, closed)
LOST = "lost"  # the connection to the run dropped without an end

RUNNING = (COMPILING, TRAINING, EVALUATING)  # a trainer is at work
STATES = (WAITING, COMPILING, TRAINING, EVALUATING, FINISHED, ENDED, LOST)

# What each state means, for hints and the docs.
MEANING: Dict[str, str] = {
  WAITING: "no training has started streaming yet",
  COMPILING: "XLA compiles the training program; the envs move once it runs",
  TRAINING: "training, streaming as the mode says",
  EVALUATING: "an eval rollout runs",
  FINISHED: "training reached its last step",
  ENDED: "the stream ended before the last step (stopped, failed or closed)",
  LOST: "the connection to the run dropped; a run that still trains reconnects",
}


def run_state(
  phase: str = "",
  *,
  started: bool = False,
  ended: bool = False,
  connected: bool = True,
) -> str:
  """The one name of a run's state.

  Args:
    phase: the trainer's last phase (``compiling``, ``training``,
      ``evaluating``, ``done``; ``""``: not told, e.g. a ``push`` loop).
    started: its stream started (a trainer said what it streams).
    ended: its stream ended.
    connected: the run can still be heard (False: its connection to a
      viewer server dropped).
  """
  if ended:
    return FINISHED if phase == "done" else ENDED
  if not connected:
    return LOST
  if phase in (COMPILING, TRAINING, EVALUATING):
    return phase
  if phase == "done":
    return FINISHED
  return TRAINING if started else WAITING
