"""Damaged recordings: the index is checked against the records it points
to, lost data is counted (chunks and env steps from the index entries of
records not read, record ids missing between records read) and reported up
front (what, how much, where), nothing a corrupt index claims is shown or
exported, and what the writer drops on purpose is no loss."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from braxviewer.app import export as export_command
from braxviewer.record import export, open_recording
from braxviewer.record import format as fmt
from braxviewer.record.loss import Loss

CHUNKS = 30


@pytest.fixture(scope="module")
def good(tmp_path_factory, make_recording):
  return make_recording(
    str(tmp_path_factory.mktemp("damage") / "run"), chunks=CHUNKS
  )


@pytest.fixture(scope="module")
def segmented(tmp_path_factory, make_recording):
  """Six segments of about five chunks each."""
  return make_recording(
    str(tmp_path_factory.mktemp("damage") / "segmented"),
    chunks=CHUNKS,
    segment_bytes=16 << 10,
  )


@pytest.fixture(scope="module")
def limited(tmp_path_factory, make_recording):
  """A recording that outgrew its ``max_bytes``: the writer thinned old
  segments and dropped the oldest."""
  return make_recording(
    str(tmp_path_factory.mktemp("damage") / "limited"),
    chunks=200,
    max_bytes=30_000,
    segment_bytes=4 << 10,
  )


@pytest.fixture
def copy(good, tmp_path):
  def make(name="copy", source=None):
    return shutil.copytree(source or good, str(tmp_path / name))

  return make


def seg(path, number=0):
  return os.path.join(path, fmt.segment_name(number))


def idx(path, number=0):
  return os.path.join(path, fmt.index_name(number))


def numbers(path):
  return sorted(
    int(name[len(fmt.SEGMENT_PREFIX) : -len(fmt.SEGMENT_SUFFIX)])
    for name in os.listdir(path)
    if name.endswith(fmt.SEGMENT_SUFFIX)
  )


def lost_from_index(rows, lost_bytes=0) -> Loss:
  """The loss of the records of ``rows`` (entries of an original index)."""
  kind = rows["kind"]
  chunks = rows[kind == fmt.KIND_CHUNK]
  steps = chunks["env_steps"].astype(np.int64)
  return Loss(
    chunks={
      name: int(np.sum(chunks["source"] == code))
      for name, code in fmt.SOURCE_CODES.items()
    },
    env_steps=(int(steps.min()), int(steps.max())) if len(steps) else None,
    frames=int(chunks["num_steps"].sum()),
    progress=int(np.sum(kind == fmt.KIND_PROGRESS)),
    markers=int(np.sum((kind == fmt.KIND_START) | (kind == fmt.KIND_END))),
    bytes=lost_bytes,
  )


def flip(path, offset, mask=0x10):
  with open(path, "r+b") as f:
    f.seek(offset)
    byte = f.read(1)[0]
    f.seek(offset)
    f.write(bytes([byte ^ mask]))


def chunk_rows(path):
  rows = np.fromfile(idx(path), dtype=fmt.INDEX_DTYPE)
  return rows, np.flatnonzero(rows["kind"] == fmt.KIND_CHUNK)


def test_a_flipped_byte_in_an_index_entry_is_caught_and_the_index_rebuilt(copy):
  path = copy()
  with open_recording(path) as rec:
    truth = rec.summary()
  rows, chunks = chunk_rows(path)
  entry = int(chunks[len(chunks) // 2])
  field = fmt.INDEX_DTYPE.fields["env_steps"][1]
  flip(idx(path), entry * fmt.INDEX_DTYPE.itemsize + field + 3, mask=0x01)
  with open_recording(path) as rec:
    assert rec.summary() == truth  # env steps as recorded, not as claimed
    assert rec.rebuilt_indexes == [fmt.segment_name(0)]
    assert rec.damage == [] and "index read off the records" in rec.report()
    got = [c.env_steps for c in rec.chunks("train")]
  with open_recording(path) as rec:  # the claimed steps select nothing
    bogus = int(rows["env_steps"][entry]) | (1 << 24)
    with pytest.raises(export.ExportError, match="covers env steps"):
      export.select_chunks(rec, "train", (bogus, bogus + 1000), 0)
  assert got == sorted(got)


def test_without_its_index_a_damaged_segment_loses_only_the_bad_record(copy):
  path = copy()
  rows, chunks = chunk_rows(path)
  middle = rows[int(chunks[len(chunks) // 2])]
  os.remove(idx(path))
  # one byte inside the middle chunk's arrays
  flip(seg(path), int(middle["offset"]) + int(middle["size"]) - 64)
  with open_recording(path) as rec:
    assert len(rec.chunks("train")) == len(chunks) - 1
    (damage,) = rec.damage
    assert damage.start == int(middle["offset"])
    assert damage.end == int(middle["offset"] + middle["size"])
    assert f"record {int(middle['rid'])}" in damage.why
    # no index entry says what it was; its id is missing, once
    assert rec.loss.unknown_records == 1 and rec.loss.records == 1
    rec.verify()
    assert rec.loss.records == 1
    report = rec.report()
  assert "1 damaged record" in report and fmt.segment_name(0) in report
  assert report.startswith("1 record of unknown kind lost")


def test_a_segment_cut_in_half_reports_every_chunk_it_lost(copy):
  path = copy()
  size = os.path.getsize(seg(path))
  cut = size // 2
  with open(seg(path), "r+b") as f:
    f.truncate(cut)
  rows, chunks = chunk_rows(path)  # the index is whole: the truth
  gone = rows[rows["offset"] + rows["size"] > cut]
  # the bytes: from the torn record on, to where the index ends
  truth = lost_from_index(gone, lost_bytes=size - int(gone["offset"][0]))
  lost = truth.chunks["train"]
  with open_recording(path) as rec:
    assert lost > 10 and len(rec.chunks("train")) == len(chunks) - lost
    assert rec.loss == truth and truth.progress > 0
    (damage,) = rec.damage
    assert damage.start == int(gone["offset"][0])
    assert damage.end == size and "cut short" in damage.why
    assert rec.unreadable_bytes == truth.bytes
    assert rec.rebuilt_indexes == []
    report = rec.report()
  lo, hi = truth.env_steps or (0, 0)
  assert report.startswith(f"{lost} training chunks (env steps {lo:,}..{hi:,},")
  assert f"{truth.bytes:,} bytes lost" in report and "cut short" in report


def test_an_emptied_segment_reports_all_its_chunks_lost(copy, segmented):
  path = copy(source=segmented)
  number = numbers(path)[2]
  rows = np.fromfile(idx(path, number), dtype=fmt.INDEX_DTYPE)
  size = os.path.getsize(seg(path, number))
  truth = lost_from_index(rows, lost_bytes=size)
  with open(seg(path, number), "r+b") as f:
    f.truncate(0)
  with open_recording(path) as rec:
    assert rec.loss == truth and truth.chunks["train"] > 0
    (damage,) = rec.damage
    assert damage.segment == fmt.segment_name(number)
    assert "emptied" in damage.why
    assert (damage.start, damage.end) == (0, size)
    assert rec.rebuilt_indexes == []  # its index was right: the data went
    report = rec.report()
  assert report.startswith(f"{truth.chunks['train']} training chunks")
  assert fmt.segment_name(number) in report and "emptied" in report


def test_a_cut_segment_without_its_index_still_counts_the_missing_ids(
  copy, segmented
):
  path = copy(source=segmented)
  number = numbers(path)[2]
  rows = np.fromfile(idx(path, number), dtype=fmt.INDEX_DTYPE)
  size = os.path.getsize(seg(path, number))
  os.remove(idx(path, number))
  with open(seg(path, number), "r+b") as f:
    f.truncate(size // 2)
  gone = rows[rows["offset"] + rows["size"] > size // 2]
  with open_recording(path) as rec:
    loss = rec.loss
    # no entry says what they were: the ids up to the next segment's first
    assert loss.unknown_records == len(gone) > 2
    assert loss.records == len(gone) and not any(loss.chunks.values())
    report = rec.report()
  first, last = int(gone["rid"][0]), int(gone["rid"][-1])
  assert report.startswith(f"{len(gone)} records of unknown kind lost")
  assert f"record ids {first:,}..{last:,} missing" in report


def test_a_deleted_segment_counts_its_ids_as_lost(copy, segmented):
  path = copy(source=segmented)
  number = numbers(path)[1]
  rows = np.fromfile(idx(path, number), dtype=fmt.INDEX_DTYPE)
  os.remove(seg(path, number))
  os.remove(idx(path, number))
  with open_recording(path) as rec:
    assert rec.loss.unknown_records == rec.loss.records == len(rows)
    assert rec.damage == []  # no bytes left to be damaged
    assert "records of unknown kind lost" in rec.report()


def test_random_flips_in_the_data_are_found_by_verify_before_anything_plays(
  copy,
):
  path = copy()
  rows, chunks = chunk_rows(path)
  rng = np.random.default_rng(0)
  hit = sorted(rng.choice(chunks, 5, replace=False))
  for k in hit:  # a payload byte of 5 chunks
    start = int(rows["offset"][k]) + fmt.FRAME.size + 8
    flip(seg(path), start + int(rng.integers(0, int(rows["size"][k]) - 48)))
  with open_recording(path) as rec:
    assert len(rec.chunks("train")) == len(chunks)  # lazily: not read yet
    damage = rec.verify()
    assert len(damage) == 5 and len(rec.chunks("train")) == len(chunks) - 5
    assert {d.start for d in damage} == {int(rows["offset"][k]) for k in hit}
    for chunk in rec.chunks("train"):  # every one left reads
      assert chunk.qpos is not None
    assert "5 damaged records" in rec.report()
    assert rec.report().startswith("5 training chunks")


def test_corruption_found_by_verify_is_counted_once(copy):
  path = copy()
  rows, chunks = chunk_rows(path)
  hit = [int(chunks[4]), int(chunks[9])]
  for k in hit:
    flip(seg(path), int(rows["offset"][k]) + int(rows["size"][k]) - 64)
  cut = int(rows["offset"][-3]) + 40  # and the last records cut off
  with open(seg(path), "r+b") as f:
    f.truncate(cut)
  cut_off = rows[rows["offset"] + rows["size"] > cut]
  size = int(rows["offset"][-1] + rows["size"][-1])
  truth = lost_from_index(  # the bytes: both records, and the cut-off end
    np.concatenate([rows[hit], cut_off]),
    lost_bytes=int(rows["size"][hit].sum()) + size - int(cut_off["offset"][0]),
  )
  with open_recording(path) as rec:
    before = rec.loss
    assert before.records == len(cut_off)  # the flips are not read yet
    rec.verify()
    rec.verify()  # a second check changes nothing
    assert len(rec.damage) == 3 and rec.loss == truth
    assert rec.loss.records == len(cut_off) + 2
    # the lost chunks are gone from the chunks, and only those
    assert len(rec.chunks("train")) + truth.chunks["train"] == len(chunks)


def test_a_clean_recording_reports_nothing(good, segmented):
  for path in (good, segmented):
    with open_recording(path) as rec:
      assert rec.loss == Loss() and not rec.loss
      rec.verify()
      assert rec.loss == Loss() and rec.report() == "" and rec.damage == []


def test_a_size_limited_recording_reports_nothing_it_thinned_or_dropped(
  limited,
):
  # the writer dropped the oldest segments and thinned others: record ids
  # have gaps, on purpose
  assert numbers(limited)[0] > 0
  ids = np.concatenate(
    [
      np.fromfile(idx(limited, n), dtype=fmt.INDEX_DTYPE)["rid"]
      for n in numbers(limited)
    ]
  )
  assert ids[0] > 0 and (np.diff(ids.astype(np.int64)) > 1).any()
  levels = []
  for n in numbers(limited):  # from each segment's header record
    with open(seg(limited, n), "rb") as f:
      data = f.read()
    (length,) = fmt.FRAME.unpack_from(data)[2:3]
    meta, _ = fmt.decode_payload(data[fmt.FRAME.size : fmt.FRAME.size + length])
    levels.append(meta["level"])
  assert max(levels) > 0  # thinned
  with open_recording(limited) as rec:
    rec.verify()
    assert rec.loss == Loss() and rec.report() == "" and rec.damage == []


def test_a_size_limited_recording_still_reports_what_it_lost(copy, limited):
  path = copy(source=limited)
  number, rows = [  # the newest segment with training chunks
    (n, rows)
    for n in numbers(path)
    for rows in [np.fromfile(idx(path, n), dtype=fmt.INDEX_DTYPE)]
    if (rows["kind"] == fmt.KIND_CHUNK).any()
  ][-1]
  with open(seg(path, number), "r+b") as f:
    f.truncate(0)
  with open_recording(path) as rec:
    truth = lost_from_index(rows)
    assert rec.loss.chunks == truth.chunks and truth.chunks["train"] > 0
    assert rec.loss.env_steps == truth.env_steps
    assert "emptied" in rec.report()


def test_a_torn_last_record_is_an_incomplete_write_not_a_loss(copy):
  path = copy()
  rows = np.fromfile(idx(path), dtype=fmt.INDEX_DTYPE)
  last = rows[-1]  # killed while writing it: before its index entry
  torn = int(last["offset"]) + int(last["size"]) // 2
  with open(seg(path), "r+b") as f:
    f.truncate(torn)
  rows[:-1].tofile(idx(path))
  with open_recording(path) as rec:
    assert rec.loss.records == 0
    (damage,) = rec.damage  # reported as bytes cut short, as ever
    assert damage.why == "cut short" and damage.start == int(last["offset"])
    assert rec.loss.bytes == torn - int(last["offset"])
    assert rec.report().startswith(f"{rec.loss.bytes:,} bytes lost")


def test_the_replay_and_export_commands_say_what_was_lost_up_front(
  copy, capsys, tmp_path
):
  path = copy()
  rows, chunks = chunk_rows(path)
  k = int(chunks[3])
  flip(seg(path), int(rows["offset"][k]) + int(rows["size"][k]) - 64)
  from braxviewer.app import replay  # a fresh command line

  code = replay.main([path, "--port", "0", "--exit-after", "0.1"])
  err = capsys.readouterr().err
  assert (
    code == 0 and "damaged" in err and f"record {int(rows['rid'][k])}" in err
  )
  out = str(tmp_path / "clip.mp4")
  code = export_command.main([path, "--steps", "0:0", "-o", out])
  err = capsys.readouterr().err
  assert "damaged" in err and "bytes lost" in err


def test_a_version_1_recording_still_opens(copy):
  path = copy()
  header_path = os.path.join(path, fmt.HEADER_FILE)
  with open(header_path, encoding="utf-8") as f:
    header = json.load(f)
  header["version"] = 1
  with open(header_path, "w", encoding="utf-8") as f:
    json.dump(header, f)
  rows = np.fromfile(idx(path), dtype=fmt.INDEX_DTYPE)
  with open(seg(path), "rb") as f:
    data = f.read()
  for row in rows:  # version 1 entries copy their record's CRC
    row["crc"] = fmt.FRAME.unpack_from(data, int(row["offset"]))[3]
  rows.tofile(idx(path))
  with open_recording(path) as rec:
    assert rec.rebuilt_indexes == [] and rec.damage == []
    assert len(rec.chunks("train")) >= CHUNKS
