"""EpochCalls: how an epoch is cut into device calls, with and without a
viewer (a fake device and a fake clock: no JAX, no timing)."""

from __future__ import annotations

import numpy as np

from braxviewer.core.protocol import TRAINING_SPS
from braxviewer.core.streamer import NoStream
from braxviewer.train import epoch_calls
from braxviewer.train.epoch_calls import EpochCalls
from braxviewer.train.progress import ProgressBar


class FakeDevice:
  """Runs calls one after another, asynchronously, ``step_s`` of fake time
  per training step: a call's result is ready (reading it waits) once the
  calls before it and its own steps are done. Its metrics sum to one per
  step, on two devices."""

  def __init__(self, clock, step_s: float):
    self.clock, self.step_s, self.calls = clock, step_s, []
    self._busy_until = clock.t

  def __call__(self, flag, n):
    self.calls.append((int(flag), n))
    self._busy_until = max(self._busy_until, self.clock.t) + n * self.step_s
    return {"loss": _Pending(self.clock, self._busy_until, n)}


class _Pending:
  def __init__(self, clock, ready_at, value):
    self.clock, self.ready_at, self.value = clock, ready_at, value

  def __array__(self, dtype=None, copy=None):
    self.clock.t = max(self.clock.t, self.ready_at)  # wait for the device
    return np.full((2,), float(self.value), dtype=dtype)


class FakeStream:
  tapped = True

  def __init__(self, flags):
    self.flags, self.beats, self.phases = list(flags), [], []

  def phase(self, name):
    self.phases.append(name)

  def flag(self):
    return np.int32(self.flags.pop(0) if len(self.flags) > 1 else self.flags[0])

  def progress(self, env_steps, metrics):
    self.beats.append((env_steps, dict(metrics)))


def test_without_a_viewer_an_epoch_is_one_call(monkeypatch, clock):
  monkeypatch.setattr(epoch_calls.time, "time", clock)
  device = FakeDevice(clock, 0.01)
  calls = EpochCalls(NoStream(), 40, 100, ProgressBar(4000, enabled=False))
  sums, seconds = calls.run(device, 0)
  assert device.calls == [(0, 40)] and sums == {"loss": 40.0}
  assert seconds > 0


def test_with_a_viewer_calls_last_about_half_a_second_and_beat(
  monkeypatch, clock
):
  monkeypatch.setattr(epoch_calls.time, "time", clock)
  device = FakeDevice(clock, 0.05)  # 10 steps per 0.5 s call
  stream = FakeStream([2, 2, 0])  # sync, sync, then off
  bar = ProgressBar(2 * 60 * 100, enabled=False)
  calls = EpochCalls(stream, 60, 100, bar)
  sums, _ = calls.run(device, first_env_steps=0)
  sizes = [n for _, n in device.calls]
  assert sizes[0] == 1  # the first call compiles: one step
  assert stream.phases == ["training"]  # once it is back
  assert sum(sizes) == 60 and sums == {"loss": 60.0}
  assert 9 <= max(sizes) <= 10  # then ~0.5 s of steps per call
  assert [f for f, _ in device.calls][:3] == [2, 2, 0]  # the mode, per call
  steps = [s for s, _ in stream.beats]
  assert steps == sorted(steps) and steps[-1] == 60 * 100
  assert all(set(m) == {TRAINING_SPS} for _, m in stream.beats)
  assert bar.done == 6000
  calls.run(device, first_env_steps=6000)  # the next epoch starts sized
  assert 9 <= device.calls[len(sizes)][1] <= 10  # 0.5 // 0.05 in floats
  assert bar.done == bar.total


class BlockingDevice(FakeDevice):
  """A device whose dispatch returns only once the call ran (as JAX's can,
  e.g. in a Jupyter kernel): each call is done before it is collected."""

  def __call__(self, flag, n):
    out = super().__call__(flag, n)
    self.clock.t = self._busy_until
    return out


def test_calls_stay_about_half_a_second_when_dispatch_blocks(
  monkeypatch, clock
):
  """Measured per call, such calls look instant and grew without bound
  (a Ctrl-C then waited 10 s for the next check)."""
  monkeypatch.setattr(epoch_calls.time, "time", clock)
  device = BlockingDevice(clock, 0.05)
  calls = EpochCalls(FakeStream([1]), 400, 100, ProgressBar(0, enabled=False))
  for epoch in range(3):
    calls.run(device, first_env_steps=epoch * 40_000)
  sizes = [n for _, n in device.calls]
  assert sum(sizes) == 1200 and max(sizes) <= 10, sizes
