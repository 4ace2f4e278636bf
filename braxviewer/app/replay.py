"""``braxviewer replay RECORDING``: a recording in the viewer's page.

    python -m braxviewer replay runs/my_run          # http://127.0.0.1:8000

The page is :class:`~braxviewer.web.replay.ReplayViewer`; this module reads
the flags, opens and checks the recording (what was lost is said up front)
and serves until Ctrl-C. No JAX.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Optional, Sequence

from braxviewer.app import cli
from braxviewer.record import format as fmt
from braxviewer.record.offscreen import configure_gl
from braxviewer.record.reader import Recording
from braxviewer.scene.layout import LAYOUTS
from braxviewer.web.replay import ReplayViewer


def main(argv: Optional[Sequence[str]] = None) -> int:
  """``python -m braxviewer replay RECORDING``."""
  p = cli.command_parser(
    "replay",
    "Serve a recording in the viewer's page: timeline over"
    " training, play/pause, speed, loop, envs, reward plots, MP4 export.",
  )
  p.add_argument("recording", help="recording directory (record_dir=)")
  p.add_argument("--host", default="127.0.0.1")
  p.add_argument("--port", type=int, default=8000)
  p.add_argument("--source", choices=("train", "eval"), default="train")
  p.add_argument(
    "--speed", type=float, default=1.0, help="playback speed, 0.1 to 4"
  )
  p.add_argument(
    "--model",
    default=None,
    help="MJCF file to draw instead of the recorded model",
  )
  p.add_argument(
    "--layout",
    choices=LAYOUTS,
    default="auto",
    help="envs on a grid, overlaid on one world, or auto (overlay on terrain)",
  )
  p.add_argument(
    "--exit-after", type=float, default=None, help=argparse.SUPPRESS
  )  # for tests: serve this long, exit
  args = p.parse_args(argv)
  if not 0.1 <= args.speed <= 4.0:
    print(
      f"{p.prog}: error: --speed must be within 0.1..4, got {args.speed}.",
      file=sys.stderr,
    )
    return 2
  configure_gl()
  try:
    started = time.perf_counter()
    rec = Recording(args.recording)
    rec.verify()  # what was lost is said up front, and never played
    opened_s = time.perf_counter() - started
    if args.model is not None and not os.path.isfile(args.model):
      raise fmt.RecordingError(f"no such MJCF file: {args.model}")
    viewer = ReplayViewer(
      rec,
      model=args.model,
      source=args.source,
      speed=args.speed,
      **cli.page_options(args),
    )
  except (fmt.RecordingError, ValueError, TypeError) as err:
    print(f"{p.prog}: error: {' '.join(str(err).split())}", file=sys.stderr)
    return 2
  summary = rec.summary()
  with cli.training_session(viewer) as session:
    viewer.run()
    if rec.report():
      print(
        f"braxviewer: the recording is damaged: {rec.report()}.",
        file=sys.stderr,
        flush=True,
      )
    print(
      f"braxviewer: replaying {args.recording}: {summary['train_chunks']}"
      f" training chunks, {summary['eval_chunks']} eval chunks (opened and"
      f" checked in {opened_s:.2f} s); Ctrl-C to quit.",
      flush=True,
    )
    if args.exit_after is not None:
      time.sleep(args.exit_after)
    else:
      session.keep_open(say=False)
  return session.exit_code


if __name__ == "__main__":
  sys.exit(main())
