"""``braxviewer export RECORDING``: a recording to MP4.

    python -m braxviewer export runs/my_run --env 3 --steps 0:200000 -o clip.mp4
    python -m braxviewer export runs/my_run --grid -o grid.mp4

Reads the flags, opens and checks the recording and calls
:func:`braxviewer.record.export.export_video`; one line and exit code 2 on
bad input. No JAX.
"""

from __future__ import annotations

import os
import sys
from typing import Optional, Sequence

from braxviewer.app import cli
from braxviewer.record import format as fmt
from braxviewer.record.export import ExportError, export_video
from braxviewer.record.offscreen import PRESETS, configure_gl
from braxviewer.record.reader import Recording

# flags that go to export_video as they are
_VIDEO_FLAGS = (
  "env",
  "grid",
  "steps",
  "source",
  "camera",
  "width",
  "height",
  "speed",
)


def main(argv: Optional[Sequence[str]] = None) -> int:
  """``python -m braxviewer export``: one line and exit code 2 on bad input."""
  p = cli.command_parser(
    "export",
    "Render a recording to MP4 (one env, or the grid of all).",
  )
  p.add_argument("recording", help="recording directory (record_dir=)")
  p.add_argument(
    "-o",
    "--output",
    default=None,
    help="MP4 file to write (default: RECORDING/export.mp4)",
  )
  p.add_argument("--env", type=int, default=0, help="env to show")
  p.add_argument(
    "--grid", action="store_true", help="show all recorded envs on their grid"
  )
  p.add_argument(
    "--steps",
    default=None,
    metavar="A:B",
    help="training env-step range of the chunks to export",
  )
  p.add_argument(
    "--source",
    choices=("train", "eval"),
    default="train",
    help="training unrolls or eval rollouts",
  )
  p.add_argument(
    "--camera",
    choices=tuple(PRESETS),
    default=None,
    help="follow (one env) or overview (grid) by default",
  )
  p.add_argument("--width", type=int, default=640, help="video width")
  p.add_argument("--height", type=int, default=480, help="video height")
  p.add_argument(
    "--speed", type=float, default=1.0, help="playback speed, 1 = real time"
  )
  args = p.parse_args(argv)
  out = args.output or os.path.join(args.recording, "export.mp4")
  configure_gl()
  try:
    rec = Recording(args.recording)
  except fmt.RecordingError as err:
    print(f"{p.prog}: error: {' '.join(str(err).split())}", file=sys.stderr)
    return 2
  try:
    rec.verify()  # say up front what was lost, and never export it
    if rec.report() and len(rec.chunks(args.source)):  # else: the error says
      print(
        f"braxviewer: the recording is damaged: {rec.report()}.",
        file=sys.stderr,
      )
    result = export_video(
      rec,
      out,
      **{name: getattr(args, name) for name in _VIDEO_FLAGS},
    )
  except (fmt.RecordingError, ExportError, RuntimeError, OSError) as err:
    message = " ".join(str(err).split())
    print(f"{p.prog}: error: {message}", file=sys.stderr)
    return 2
  finally:
    rec.close()
  print(
    f"braxviewer: wrote {result.path}: {result.frames} frames at"
    f" {result.fps:g} fps, {result.width}x{result.height}, from"
    f" {result.chunks} chunks (env steps {result.env_steps[0]}.."
    f"{result.env_steps[1]})."
  )
  return 0


if __name__ == "__main__":
  sys.exit(main())
