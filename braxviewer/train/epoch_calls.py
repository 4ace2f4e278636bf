"""The viewer's part of a training epoch: how it is cut into device calls.

Without a viewer an epoch is one device call, as upstream runs it. With one,
:class:`EpochCalls` cuts it into calls that last about ``call_seconds``
each (sized from the measured step time; the first call, which compiles,
holds one step), reads the wanted mode before each call, dispatches the next
call before waiting for the last one when calls hold several steps (no idle
device between calls), and after each call sends the viewer a heartbeat of
env steps and speed and moves the progress bar. A mode switch thus reaches
the device within about a second, or within one training step when a step
alone takes longer. Host side only: no JAX.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, Mapping, Optional, Tuple, Union

import numpy as np

from braxviewer.core.protocol import TRAINING_SPS
from braxviewer.core.streamer import NoStream, Streamer
from braxviewer.train.progress import ProgressBar

CALL_SECONDS = 0.5  # how long a device call should last with a viewer

Sums = Dict[str, np.ndarray]
# dispatch(flag, num_steps) -> the call's summed metrics, still on device
Dispatch = Callable[[np.int32, int], Mapping[str, Any]]


def _on_host(sums: Mapping[str, Any]) -> Sums:
  """Device 0's copy of each summed metric."""
  return {k: np.asarray(v)[0] for k, v in sums.items()}


class EpochCalls:
  """Runs epochs of training steps as device calls, the viewer's way.

  Args:
    stream: where the viewer is (:class:`NoStream` without one).
    steps_per_epoch: training steps in an epoch.
    env_steps_per_step: env steps one training step advances the run by.
    bar: the progress bar to move.
    call_seconds: how long a call should last with a viewer (None:
      :data:`CALL_SECONDS`).
    check: called between device calls (may raise: a Ctrl-C stops the
      run there).
    on_phase: told each phase too.

  The run's phase (:meth:`phase`) goes to the bar and the stream; the
  first call's return (it compiled) makes it ``"training"``.
  """

  def __init__(
    self,
    stream: Union[Streamer, NoStream],
    steps_per_epoch: int,
    env_steps_per_step: int,
    bar: ProgressBar,
    call_seconds: Optional[float] = None,
    check: Callable[[], None] = lambda: None,
    on_phase: Callable[[str], None] = lambda name: None,
  ):
    self._check = check
    self._on_phase = on_phase
    self._compiled = False
    self._stream = stream
    self._steps_per_epoch = int(steps_per_epoch)
    self._env_steps_per_step = int(env_steps_per_step)
    self._bar = bar
    self._call_seconds = float(
      CALL_SECONDS if call_seconds is None else call_seconds
    )
    # The first call compiles: one step; later calls are sized from it.
    self._steps_per_call = 1 if stream.tapped else self._steps_per_epoch

  def phase(self, name: str) -> None:
    """What the run does now (``compiling``, ``training``, ``evaluating``,
    ``done``), on the terminal's bar and in the viewer."""
    self._on_phase(name)
    self._bar.phase(name)
    self._stream.phase(name)

  def run(self, dispatch: Dispatch, first_env_steps: int) -> Tuple[Sums, float]:
    """One epoch: ``dispatch(flag, n)`` starts ``n`` training steps on the
    devices and returns their summed metrics. Returns the epoch's summed
    metrics (host numpy) and its wall time in seconds."""
    t_epoch = time.time()
    done = collected = 0
    sums: Optional[Sums] = None
    pending: Optional[Tuple[Mapping[str, Any], int, float]] = None
    # Where this epoch's speed is measured from: the first call's dispatch
    # (after the compile call: its end), and the steps collected since.
    rate: Optional[Tuple[float, int]] = None

    def collect(call: Tuple[Mapping[str, Any], int, float]) -> None:
      nonlocal sums, collected, rate
      call_sums, n, t_dispatch = call
      host = _on_host(call_sums)  # waits for the call
      t_done = time.time()
      sums = host if sums is None else {k: sums[k] + v for k, v in host.items()}
      collected += n
      if self._stream.tapped:
        if not self._compiled:  # the call that compiled: no speed in it
          rate = (t_done, 0)
        else:
          since, steps = rate if rate is not None else (t_dispatch, 0)
          rate = (since, steps + n)
          # The epoch's average so far: how long a call of n steps takes,
          # whatever dispatch blocks on (a per-call time can read ~0 when
          # the call finished before it was collected). Calls grow at most
          # 4x at a time.
          per_step = max(t_done - since, 1e-6) / (steps + n)
          wanted = int(max(1, self._call_seconds // per_step))
          self._steps_per_call = min(wanted, 4 * n)
        env_steps = collected * self._env_steps_per_step
        self._stream.progress(  # the heartbeat, also while streaming is off
          first_env_steps + env_steps,
          {TRAINING_SPS: env_steps / max(t_done - t_epoch, 1e-6)},
        )
      if not self._compiled:
        self._compiled = True
        self.phase("training")
      self._bar.update(first_env_steps + collected * self._env_steps_per_step)
      self._check()

    while done < self._steps_per_epoch:
      self._check()
      n = min(self._steps_per_call, self._steps_per_epoch - done)
      t_dispatch = time.time()
      call_sums = dispatch(self._stream.flag(), n)
      done += n
      if pending is not None:
        collect(pending)
      pending = (call_sums, n, t_dispatch)
      if n == 1:  # long steps: wait now, so a switch lands next step
        collect(pending)
        pending = None
    if pending is not None:
      collect(pending)
    assert sums is not None
    return sums, time.time() - t_epoch
