"""Bad input to replay and export: one clear line, exit code 2."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from braxviewer.app import export, replay
from braxviewer.record import (
  RecordingError,
  RecordingNotFound,
  UnsupportedVersion,
  open_recording,
)
from braxviewer.record import format as fmt


@pytest.fixture(scope="module")
def good(tmp_path_factory, make_recording):
  return make_recording(str(tmp_path_factory.mktemp("bad") / "run"), chunks=4)


def one_line_error(capsys, code: int, *words: str) -> str:
  out = capsys.readouterr()
  assert code == 2
  lines = out.err.strip().splitlines()
  assert len(lines) == 1, out.err
  assert lines[0].startswith("braxviewer "), lines[0]
  for w in words:
    assert w in lines[0], (w, lines[0])
  return lines[0]


def newer(good: str, tmp_path) -> str:
  path = str(tmp_path / "newer")
  shutil.copytree(good, path)
  header = os.path.join(path, fmt.HEADER_FILE)
  with open(header) as f:
    data = json.load(f)
  data["version"] = fmt.FORMAT_VERSION + 1
  with open(header, "w") as f:
    json.dump(data, f)
  return path


def test_missing_recording(capsys, tmp_path):
  code = export.main([str(tmp_path / "nope")])
  one_line_error(capsys, code, "no recording at", "nope")
  code = replay.main([str(tmp_path / "nope"), "--port", "0"])
  one_line_error(capsys, code, "no recording at", "nope")
  os.makedirs(tmp_path / "empty")
  code = export.main([str(tmp_path / "empty")])
  one_line_error(capsys, code, "is not a braxviewer recording")
  with pytest.raises(RecordingNotFound):
    open_recording(tmp_path / "nope")


@pytest.mark.slow  # renders video offscreen
def test_corrupt_header_and_segments(good, capsys, tmp_path):
  bad = str(tmp_path / "bad_header")
  shutil.copytree(good, bad)
  with open(os.path.join(bad, fmt.HEADER_FILE), "w") as f:
    f.write("{not json")
  code = export.main([bad])
  one_line_error(capsys, code, "corrupt", fmt.HEADER_FILE)

  garbage = str(tmp_path / "garbage")
  shutil.copytree(good, garbage)
  seg = os.path.join(garbage, fmt.segment_name(0))
  size = os.path.getsize(seg)
  with open(seg, "wb") as f:
    f.write(os.urandom(size))
  code = export.main([garbage, "-o", str(tmp_path / "x.mp4")])
  one_line_error(capsys, code, "no readable train chunks", "unreadable")
  code = replay.main([garbage, "--port", "0"])
  one_line_error(capsys, code, "no readable chunks")

  flipped = str(tmp_path / "flipped")  # one bit flipped inside a chunk
  shutil.copytree(good, flipped)
  with open_recording(flipped) as rec:
    row = rec.chunks("train")._rows[1]
  at = int(row["offset"]) + int(row["size"]) - 20
  with open(os.path.join(flipped, fmt.segment_name(0)), "r+b") as f:
    f.seek(at)
    byte = f.read(1)
    f.seek(at)
    f.write(bytes([byte[0] ^ 0x10]))
  # the command checks every record first: it says what was lost, where,
  # and exports the rest
  code = export.main(
    [flipped, "-o", str(tmp_path / "y.mp4"), "--width", "64", "--height", "48"]
  )
  err = capsys.readouterr().err
  assert code == 0 and "damaged" in err and "checksum mismatch" in err
  assert f"record {int(row['rid'])}" in err and os.path.exists(
    tmp_path / "y.mp4"
  )
  # a library user reading that chunk without checking gets a clear error
  with open_recording(flipped) as rec:
    with pytest.raises(RecordingError, match="checksum"):
      rec.chunks("train")[1]  # noqa: B018 (reading is the test)


def test_newer_format_version(good, capsys, tmp_path):
  path = newer(good, tmp_path)
  with pytest.raises(UnsupportedVersion):
    open_recording(path)
  code = export.main([path])
  one_line_error(
    capsys, code, f"version {fmt.FORMAT_VERSION + 1}", "upgrade braxviewer"
  )
  code = replay.main([path, "--port", "0"])
  one_line_error(capsys, code, "upgrade braxviewer")


def test_env_and_step_range_outside_the_recording(good, capsys, tmp_path):
  out = str(tmp_path / "z.mp4")
  code = export.main([good, "--env", "4", "-o", out])
  one_line_error(capsys, code, "env 4 is out of range", "4 envs (0..3)")
  code = export.main([good, "--env", "-1", "-o", out])
  one_line_error(capsys, code, "env -1 is out of range")
  code = export.main([good, "--steps", "10000000:20000000", "-o", out])
  line = one_line_error(
    capsys,
    code,
    "no train chunk was recorded between",
    "the recording covers env steps",
  )
  assert "10000000" in line
  code = export.main([good, "--steps", "5:x", "-o", out])
  one_line_error(capsys, code, "--steps must look like A:B")
  code = export.main([good, "--width", "101", "-o", out])
  one_line_error(capsys, code, "even")
  assert not os.path.exists(out)
  code = replay.main([good, "--speed", "9"])
  one_line_error(capsys, code, "--speed")


def test_the_real_command_line_exits_2_with_one_line(good, tmp_path):
  proc = subprocess.run(
    [
      sys.executable,
      "-m",
      "braxviewer",
      "export",
      good,
      "--env",
      "99",
      "-o",
      str(tmp_path / "a.mp4"),
    ],
    capture_output=True,
    text=True,
    timeout=120,
  )
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines() == [
    "braxviewer export: error: env 99 is out of range: the recording"
    " streamed 4 envs (0..3)."
  ]
  proc = subprocess.run(
    [sys.executable, "-m", "braxviewer", "replay", str(tmp_path / "none")],
    capture_output=True,
    text=True,
    timeout=120,
  )
  assert proc.returncode == 2
  assert len(proc.stderr.strip().splitlines()) == 1
  assert "no recording at" in proc.stderr


def test_recorder_refuses_to_overwrite_by_accident(good, tmp_path):
  from braxviewer.record import Recorder

  with pytest.raises(FileExistsError, match="already holds a recording"):
    Recorder(good)
  other = tmp_path / "other"
  other.mkdir()
  (other / "notes.txt").write_text("mine")
  with pytest.raises(FileExistsError, match="not empty"):
    Recorder(str(other))
  copy = str(tmp_path / "copy")
  shutil.copytree(good, copy)
  Recorder(copy, overwrite=True).close()
  with open_recording(copy) as rec:
    assert len(rec.chunks("train")) == 0
  with pytest.raises(RecordingError):
    open_recording(other)
