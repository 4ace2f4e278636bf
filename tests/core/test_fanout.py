"""FanOut: one stream, several viewers (the web page and a recorder)."""

from __future__ import annotations

import pytest

from braxviewer import HeadlessViewer
from braxviewer.core.fanout import FanOut, FanOutWarning
from braxviewer.core.protocol import Mode
from braxviewer.testing.factories import stream_info

INFO = stream_info(2, num_train_envs=4)


class Initable(HeadlessViewer):
  """A viewer that also takes a model, as the web viewer and recorder do."""

  def __init__(self, **kw):
    super().__init__(**kw)
    self.envs = []

  def init(self, env):
    self.envs.append(env)
    return self


def test_fan_out_isolates_a_failing_viewer_and_takes_the_highest_mode(
  make_chunk,
):
  class Broken(HeadlessViewer):
    def on_chunk(self, chunk):
      raise RuntimeError("boom")

  a, b = Broken(num_envs=2), HeadlessViewer(num_envs=2, mode="off")
  fan = FanOut(a, b)
  assert fan.mode == Mode.LIVE and fan.requested_envs() == 2
  b.set_mode("sync")
  assert fan.mode == Mode.SYNC
  with pytest.warns(FanOutWarning, match="boom"):
    fan.on_chunk(make_chunk(seq=0))
  fan.on_chunk(make_chunk(seq=1))
  assert [c.seq for c in b.chunks] == [0, 1]
  with pytest.raises(ValueError, match="different numbers of envs"):
    FanOut(HeadlessViewer(num_envs=2), HeadlessViewer(num_envs=3))


def test_a_lead_sets_the_mode_and_the_others_get_what_it_lets_through(
  make_chunk,
):
  page, rec = HeadlessViewer(mode="off"), HeadlessViewer(mode="live")
  fan = FanOut(page, rec, lead=page)
  assert fan.mode == Mode.OFF  # the page said off: the recorder does not
  page.set_mode("live")  # ... turn the stream on by itself
  assert fan.mode == Mode.LIVE
  rec.set_mode("sync")
  assert fan.mode == Mode.LIVE
  fan.on_chunk(make_chunk(seq=3))
  assert [c.seq for c in page.chunks] == [3] == [c.seq for c in rec.chunks]
  with pytest.raises(ValueError, match="lead must be one of its viewers"):
    FanOut(page, lead=rec)
  with pytest.raises(ValueError, match="cannot remove its lead"):
    fan.remove(page)


def test_a_viewer_added_mid_run_is_caught_up_and_one_removed_gets_nothing(
  make_chunk,
):
  first = Initable()
  fan = FanOut(first, lead=first)
  fan.init("the env")
  fan.on_stream_start(INFO)
  fan.on_chunk(make_chunk(seq=0))
  late = Initable()
  fan.add(late)
  assert late.envs == ["the env"] and late.stream_info is INFO
  fan.on_chunk(make_chunk(seq=1))
  assert [c.seq for c in late.chunks] == [1]
  fan.remove(late)
  fan.on_chunk(make_chunk(seq=2))
  assert [c.seq for c in late.chunks] == [1]
  assert [c.seq for c in first.chunks] == [0, 1, 2]
  with pytest.raises(ValueError, match="different numbers of envs"):
    FanOut(HeadlessViewer(num_envs=2)).add(HeadlessViewer(num_envs=3))
  fan.on_stream_end()
  after = Initable()
  fan.add(after)  # the stream ended: nothing to catch up on but the model
  assert after.envs == ["the env"] and after.stream_info is None
