"""``python -m braxviewer`` / ``braxviewer``: train, or view a model.

braxviewer train --env hopper --view-envs 16   # the main demo
braxviewer view robot.xml --num-envs 16        # check a model and grid
braxviewer replay runs/my_run                  # replay a recording
braxviewer export runs/my_run --env 3 -o clip.mp4
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Optional, Sequence

from braxviewer import cli

COMMANDS = {
  "train": "train a brax env with PPO and watch it live (the main demo)",
  "view": "show N copies of an MJCF model on the grid, to check it",
  "replay": "replay a recording (record_dir=) in the viewer's page",
  "export": "render a recording to MP4 (one env, or --grid)",
}


def _view(argv: Sequence[str]) -> int:
  p = argparse.ArgumentParser(
    prog="braxviewer view",
    description="Serve a static page with N copies of an MJCF model on the"
    " training grid, to check the model and the layout before training.",
    formatter_class=cli.HelpFormatter,
  )
  p.add_argument("model", help="path of an MJCF (.xml) file")
  p.add_argument("--num-envs", type=int, default=16, help="copies to show")
  p.add_argument(
    "--grid",
    type=int,
    nargs=3,
    metavar=("X", "Y", "Z"),
    help="grid dimensions (default: near-square)",
  )
  p.add_argument(
    "--spacing",
    type=float,
    nargs=3,
    metavar=("DX", "DY", "DZ"),
    help="distance between copies (default: from the model)",
  )
  p.add_argument("--host", default="127.0.0.1")
  p.add_argument("--port", type=int, default=8000)
  p.add_argument(
    "--exit-after", type=float, default=None, help=argparse.SUPPRESS
  )  # for tests: serve this long, exit
  args = p.parse_args(argv)
  if args.num_envs < 1:
    p.exit(
      2,
      f"{p.prog}: error: --num-envs must be at least 1, got {args.num_envs}.\n",
    )
  if not os.path.isfile(args.model):
    p.exit(2, f"{p.prog}: error: no such MJCF file: {args.model}\n")

  import mujoco

  from braxviewer.WebViewerBatched import WebViewerBatched

  try:
    model = mujoco.MjModel.from_xml_path(args.model)
  except ValueError as err:
    message = " ".join(str(err).split())
    p.exit(2, f"{p.prog}: error: MuJoCo cannot load {args.model}: {message}\n")
  try:
    viewer = WebViewerBatched(
      num_envs=args.num_envs,
      grid_dims=args.grid,
      env_offset=args.spacing,
      host=args.host,
      port=args.port,
      mode="off",
    )
    with cli.training_session(viewer) as session:
      viewer.run()
      viewer.init(model)
      if viewer.page is not None:
        viewer.page.hide_trainer_controls()
      print(
        f"braxviewer: showing {args.num_envs} copies of {args.model};"
        " Ctrl-C to quit.",
        flush=True,
      )
      if args.exit_after is not None:
        time.sleep(args.exit_after)
      else:
        session.keep_open()
  except ValueError as err:
    p.exit(2, f"{p.prog}: error: {err}\n")
  return session.exit_code


def main(argv: Optional[Sequence[str]] = None) -> int:
  argv = list(sys.argv[1:] if argv is None else argv)
  if not argv or argv[0] in ("-h", "--help"):
    print((__doc__ or "").strip())
    print("\ncommands:")
    for name, text in COMMANDS.items():
      print(f"  {name:8s} {text}")
    print("\n`braxviewer COMMAND --help` lists a command's flags.")
    return 0 if argv else 2
  command, rest = argv[0], argv[1:]
  if command == "train":
    from braxviewer import train_demo

    sys.argv[0] = "braxviewer train"
    return train_demo.main(rest)
  if command == "view":
    return _view(rest)
  if command in ("replay", "export"):
    from braxviewer.record.offscreen import configure_gl

    configure_gl()  # before mujoco is imported
    from braxviewer import export, replay

    return (replay if command == "replay" else export).main(rest)
  print(
    f"braxviewer: error: unknown command {command!r}; commands:"
    f" {', '.join(COMMANDS)}.",
    file=sys.stderr,
  )
  return 2


if __name__ == "__main__":
  sys.exit(main())
