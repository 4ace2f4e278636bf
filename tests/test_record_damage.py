"""Damaged recordings: the index is checked against the records it points
to, lost data is reported up front (how much, where), and nothing a corrupt
index claims is shown or exported."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from braxviewer import export
from braxviewer.record import format as fmt
from braxviewer.record import open_recording

CHUNKS = 30


@pytest.fixture(scope="module")
def good(tmp_path_factory, make_recording):
  return make_recording(
    str(tmp_path_factory.mktemp("damage") / "run"), chunks=CHUNKS
  )


@pytest.fixture
def copy(good, tmp_path):
  def make(name="copy"):
    return shutil.copytree(good, str(tmp_path / name))

  return make


def seg(path):
  return os.path.join(path, fmt.segment_name(0))


def idx(path):
  return os.path.join(path, fmt.index_name(0))


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
    report = rec.report()
  assert "1 damaged record" in report and fmt.segment_name(0) in report


def test_a_segment_cut_in_half_says_how_much_was_lost(copy):
  path = copy()
  size = os.path.getsize(seg(path))
  with open(seg(path), "r+b") as f:
    f.truncate(size // 2)
  rows, chunks = chunk_rows(path)
  whole = int(
    np.sum(rows["offset"][chunks] + rows["size"][chunks] <= size // 2)
  )
  with open_recording(path) as rec:
    assert len(rec.chunks("train")) == whole
    kept = rec.rows["offset"] + rec.rows["size"]
    lost = size // 2 - int(kept.max())
    assert rec.unreadable_bytes == lost and lost > 0
    assert "cut short" in rec.report()


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
    assert "5 damaged record(s)" in rec.report()


def test_the_replay_and_export_commands_say_what_was_lost_up_front(
  copy, capsys, tmp_path
):
  path = copy()
  rows, chunks = chunk_rows(path)
  k = int(chunks[3])
  flip(seg(path), int(rows["offset"][k]) + int(rows["size"][k]) - 64)
  from braxviewer import replay  # a fresh command line

  code = replay.main([path, "--port", "0", "--exit-after", "0.1"])
  err = capsys.readouterr().err
  assert (
    code == 0 and "damaged" in err and f"record {int(rows['rid'][k])}" in err
  )
  out = str(tmp_path / "clip.mp4")
  code = export.main([path, "--steps", "0:0", "-o", out])
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
