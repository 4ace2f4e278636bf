"""Which process and device stream: the flag's layout and the Streamer's
choice (host side only, no training)."""

import warnings

import pytest

from braxviewer import HeadlessViewer
from braxviewer.core.protocol import (
  Mode,
  StreamInfo,
  check_stream_source,
  decode_flag,
  encode_flag,
)
from braxviewer.core.streamer import Streamer, StreamSourceWarning
from braxviewer.testing.factories import stream_info


def _info(process_count: int = 2, local_devices: int = 2) -> StreamInfo:
  return stream_info(
    2,
    num_train_envs=8 * process_count * local_devices,
    envs_per_device=8,
    nq=2,
    chunk_length=20,
    process_count=process_count,
    local_devices=local_devices,
  )


def _streamers(viewers, process_count: int = 2, local_devices: int = 2):
  info = _info(process_count, local_devices)
  return [
    Streamer(v, info, steps_per_chunk=160, process_index=i)
    for i, v in enumerate(viewers)
  ]


def test_flag_holds_the_mode_in_the_low_bits_and_the_device_above():
  for mode in (Mode.LIVE, Mode.SYNC):
    for device in (0, 1, 5, 1000):
      flag = encode_flag(mode, device)
      assert decode_flag(flag) == (mode.flag, device)
      assert flag & 3 == mode.flag and flag >> 2 == device
  # Off is 0 whatever the device: a flag of 0 never sends.
  assert encode_flag(Mode.OFF, 7) == 0
  assert encode_flag(Mode.LIVE) == Mode.LIVE.flag  # device 0: the old flag
  assert encode_flag(Mode.SYNC) == Mode.SYNC.flag
  with pytest.raises(ValueError):
    encode_flag(Mode.LIVE, -1)


def test_stream_source_values_are_checked():
  assert check_stream_source(None) == (0, 0)
  assert check_stream_source((1, 0)) == (1, 0)
  assert check_stream_source([0, 3]) == (0, 3)
  for bad in ((1,), (1, 2, 3), (-1, 0), (0.5, 0), (True, 0), "10", 3):
    with pytest.raises(ValueError, match="stream_source"):
      check_stream_source(bad)


def test_only_the_chosen_process_gets_the_mode_and_the_chosen_device_in_it():
  viewers = [HeadlessViewer(mode="sync") for _ in range(2)]
  s0, s1 = _streamers(viewers)
  assert (s0.flag(), s1.flag()) == (2, 0)  # default (0, 0): axis index 0
  for v in viewers:
    v.stream_source = (1, 1)
  # process 1, local device 1: axis index 1 * 2 + 1 = 3
  assert (s0.flag(), s1.flag()) == (0, encode_flag(Mode.SYNC, 3))
  for v in viewers:
    v.stream_source = (0, 1)
    v.set_mode("live")
  assert (s0.flag(), s1.flag()) == (encode_flag(Mode.LIVE, 1), 0)
  for v in viewers:
    v.set_mode("off")
  assert (s0.flag(), s1.flag()) == (0, 0)
  # Each viewer is told the source used, once per change; both processes
  # report the run's mode.
  for v in viewers:
    assert v.stream_sources == [(0, 0), (1, 1), (0, 1)]
    assert v.trainer_modes == ["sync", "live", "off"]


def test_a_viewer_without_stream_source_streams_from_process_0_device_0():
  class Plain:
    mode = "live"

    def on_trainer_mode(self, mode):
      pass

  s0, s1 = _streamers([Plain(), Plain()])
  assert (s0.flag(), s1.flag()) == (1, 0)


def test_a_bad_choice_is_ignored_with_one_warning_and_the_last_valid_one_stays():
  viewer = HeadlessViewer(mode="live", stream_source=(0, 1))
  (stream,) = _streamers([viewer], process_count=1, local_devices=2)
  assert stream.flag() == encode_flag(Mode.LIVE, 1)
  for bad, why in (
    ((1, 0), "process 1"),
    ((0, 2), "local device 2"),
    ("x", "two non-negative ints"),
  ):
    viewer.stream_source = bad  # pyright: ignore[reportAttributeAccessIssue]
    with pytest.warns(StreamSourceWarning, match=why) as caught:
      flags = [stream.flag() for _ in range(3)]
    assert len(caught) == 1  # once per bad value, not per read
    assert flags == [encode_flag(Mode.LIVE, 1)] * 3
  viewer.stream_source = None
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    assert stream.flag() == Mode.LIVE.flag
  assert viewer.stream_sources == [(0, 1), (0, 0)]
  assert not stream.failed


def test_a_stream_source_that_raises_turns_the_stream_off_not_the_training():
  class Broken:
    mode = "live"

    def on_trainer_mode(self, mode):
      pass

    @property
    def stream_source(self):
      raise RuntimeError("boom")

  (stream,) = _streamers([Broken()], process_count=1)
  with pytest.warns(RuntimeWarning, match="stream_source"):
    assert stream.flag() == 0
  assert stream.failed and stream.flag() == 0
