"""The player: which streamed frame is on screen (live, sync, review).

Pure Python with a fake clock: no viser, no JAX.
"""

from __future__ import annotations

import pytest

from braxviewer.core.timeline import RecentChunks
from braxviewer.web.pacing import Player


def test_live_plays_newest_at_real_time_and_counts_drops(make_chunk, clock):
  p = Player(clock=clock)
  for i in range(3):
    assert (
      p.offer(make_chunk(seq=i), sync=False) is None
    )  # never a ticket in live
  assert p.counters.chunks_dropped == 2 and p.counters.frames_dropped == 20
  entry, index = p.tick()
  assert entry.chunk.seq == 2 and index == 0
  assert p.tick() is None  # same frame until dt has passed
  clock.t += 0.0105
  assert p.tick()[1] == 1
  clock.t += 0.05  # the page was slow: frames 2..5 skipped, counted
  assert p.tick()[1] == 6
  assert p.counters.frames_dropped == 20 + 4
  assert p.counters.frames_shown == 3


def test_sync_shows_every_frame_then_releases(make_chunk, clock):
  p = Player(clock=clock)
  ticket = p.offer(make_chunk(t=3), sync=True)
  assert ticket is not None and not ticket.released
  shown = []
  for _ in range(10):
    clock.t += 1.0  # far behind real time: sync still shows every frame
    frame = p.tick()
    if frame:
      shown.append(frame[1])
  assert shown == [0, 1, 2]
  assert ticket.released
  assert p.counters.frames_dropped == 0


def test_speed_pause_and_source(make_chunk, clock):
  p = Player(clock=clock)
  p.offer(make_chunk(t=100, dt=0.1), sync=False)
  assert p.tick()[1] == 0
  p.set_speed(2.0)
  clock.t += 0.1
  assert p.tick()[1] == 2
  p.set_paused(True)
  clock.t += 5.0
  assert p.tick() is None
  p.set_paused(False)
  clock.t += 0.05
  assert p.tick()[1] == 3
  p.set_source("eval")
  assert (
    p.offer(make_chunk(source="train"), sync=True) is None
  )  # not on display
  assert p.counters.chunks_skipped == 1
  for bad in (0, -1, float("nan"), float("inf")):
    with pytest.raises(ValueError):
      p.set_speed(bad)


def test_live_cuts_a_long_chunk_when_a_newer_one_waits(make_chunk, clock):
  p = Player(clock=clock, max_hold=1.0)
  p.offer(make_chunk(t=1000, dt=0.01, seq=0), sync=False)
  assert p.tick()[0].chunk.seq == 0
  clock.t += 0.5
  assert p.tick()[0].chunk.seq == 0  # nothing newer: keeps playing
  p.offer(make_chunk(t=1000, dt=0.01, seq=1), sync=False)
  clock.t += 0.6  # held 1.1 s with a newer chunk waiting: switch
  entry, index = p.tick()
  assert entry.chunk.seq == 1 and index == 0
  assert p.counters.frames_dropped == 998  # 1000 - the 2 frames shown


def _played(p, clock, ticks=200, step=0.01):
  """(seq, frame) of every frame drawn over ``ticks`` clock steps."""
  out = []
  for _ in range(ticks):
    frame = p.tick()
    if frame is not None:
      out.append((frame[0].chunk.seq, frame[1]))
    clock.t += step
  return out


def test_review_jumps_back_plays_on_in_order_then_follows_training_again(
  make_chunk, clock
):
  p = Player(clock=clock)
  for i in range(5):  # live: only the newest plays, all five are kept
    p.offer(make_chunk(t=3, seq=i, steps=10 * i), sync=False)
  assert p.tick()[0].chunk.seq == 4 and p.cursor == 4
  entry, index = p.jump(1)
  assert (entry.chunk.seq, index) == (1, 0) and not p.following
  assert not entry.from_feed
  p.offer(make_chunk(t=3, seq=5, steps=50), sync=False)  # kept, not shown now
  assert p.counters.chunks_dropped == 4 + 1
  # the review plays on in stream order: 1, 2, 3, 4, 5, then rejoins the feed
  seen = _played(p, clock, ticks=300)
  order = [s for s, f in seen if f == 0]
  assert order[:4] == [2, 3, 4, 5], seen
  assert p.following
  p.offer(make_chunk(t=3, seq=6, steps=60), sync=False)
  assert p.tick()[0].chunk.seq == 6 and p.tick() is None


def test_review_holds_a_sync_trainer_until_live_again(make_chunk, clock):
  p = Player(clock=clock)
  p.offer(make_chunk(t=2, seq=0), sync=False)
  p.tick()
  p.set_paused(True)
  p.jump(0)
  assert p.paused  # jumping keeps the pause state
  ticket = p.offer(make_chunk(t=2, seq=1), sync=True)
  clock.t += 1.0
  assert p.tick() is None and not ticket.released
  p.go_live()  # follows the trainer again, and resumes
  assert not p.paused and p.following
  seen = _played(p, clock, ticks=50)
  assert (1, 0) in seen and (1, 1) in seen
  assert ticket.released


def test_review_loops_and_repeats_and_switches_source_by_env_steps(
  make_chunk, clock
):
  recent = RecentChunks()
  for i in range(3):
    recent.append(make_chunk(t=2, seq=i, steps=100 * i))
    recent.append(make_chunk(t=2, seq=i, steps=100 * i + 40, source="eval"))
  p = Player(recent, live=False, loop=True, clock=clock)  # as replay does
  seen = [s for s, f in _played(p, clock, ticks=100) if f == 0]
  assert seen[:5] == [0, 1, 2, 0, 1]  # from the start, looping
  p.jump(1)
  p.repeat = True
  seen = [s for s, f in _played(p, clock, ticks=100) if f == 0]
  assert set(seen) == {1}
  p.repeat = False
  p.set_source("eval")  # on screen: train chunk 1 (100 steps) -> eval 140
  frame = _played(p, clock, ticks=1)
  assert frame == [(1, 0)] and p.timeline.source == "eval"
  p.loop = False
  p.jump(2)
  assert [s for s, f in _played(p, clock, ticks=100) if f == 0] == []
  assert p.tick() is None and not p.following  # replay never follows


def test_live_after_a_review_plays_the_newest_chunk_also_once_training_ended(
  make_chunk, clock
):
  p = Player(clock=clock)
  for i in range(5):
    p.offer(make_chunk(t=3, seq=i), sync=False)
  _played(p, clock, ticks=50)  # the newest played; no more will come
  p.jump(1)
  p.set_paused(True)  # reviewing chunk 1, paused, as a page would leave it
  assert p.held and _played(p, clock, ticks=20) == []
  p.go_live()  # the page's Live button
  assert not p.held
  seen = _played(p, clock, ticks=50)
  assert seen[:3] == [(4, 0), (4, 1), (4, 2)]  # the newest chunk, again
  assert p.cursor == 4 and p.following


def test_live_on_the_newest_chunk_plays_it_from_its_start_unless_live_already(
  make_chunk, clock
):
  p = Player(clock=clock)
  for i in range(3):
    p.offer(make_chunk(t=3, seq=i), sync=False)
  seen = _played(p, clock, ticks=50)  # the newest played; no more will come
  assert seen == [(2, 0), (2, 1), (2, 2)] and p.following
  p.go_live()  # on the newest chunk, training over: it plays again
  assert _played(p, clock, ticks=50) == [(2, 0), (2, 1), (2, 2)]
  p.offer(make_chunk(t=3, seq=3), sync=False)
  assert p.tick()[0].chunk.seq == 3
  p.set_paused(True)  # paused on the newest chunk, mid-way
  clock.t += 0.015
  p.go_live()  # not paused any more, the newest from its first frame
  assert not p.paused and p.following
  assert _played(p, clock, ticks=50) == [(3, 0), (3, 1), (3, 2)]
  p.offer(make_chunk(t=100, seq=4), sync=False)
  assert p.tick() == (p.last_frame[0], 0)
  clock.t += 0.025
  assert p.tick()[1] == 2
  p.go_live()  # live already, playing: it plays on
  clock.t += 0.01
  assert p.tick()[1] == 3 and p.cursor == 4
