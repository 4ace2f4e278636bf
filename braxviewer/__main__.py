"""``python -m braxviewer`` / ``braxviewer``: train, or view a model.

braxviewer train --env hopper --view-envs 16   # the main demo
braxviewer view robot.xml --num-envs 16        # check a model and grid
braxviewer view ReacherEasy                    # a MuJoCo Playground env
braxviewer replay runs/my_run                  # replay a recording
braxviewer export runs/my_run --env 3 -o clip.mp4
braxviewer serve --record-dir runs             # a page that training runs
                                               # connect to (braxviewer.connect)
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Optional, Sequence

from braxviewer import cli
from braxviewer.layout import LAYOUTS

COMMANDS = {
  "train": "train a brax env with PPO and watch it live (the main demo)",
  "view": "show N copies of a model (MJCF, Playground or brax env) on the grid",
  "replay": "replay a recording (record_dir=) in the viewer's page",
  "export": "render a recording to MP4 (one env, or --grid)",
  "serve": "a viewer server that training runs connect to (several runs)",
}


def _view(argv: Sequence[str]) -> int:
  p = argparse.ArgumentParser(
    prog="braxviewer view",
    description="Serve a static page with N copies of a model on the"
    " training grid, to check the model and the layout before training:"
    " an MJCF file, a MuJoCo Playground env (e.g. ReacherEasy) or a brax"
    " env (e.g. ant), drawn as the env compiles it.",
    formatter_class=cli.HelpFormatter,
  )
  p.add_argument(
    "model",
    help="an MJCF (.xml) file, or the name of a MuJoCo Playground or brax env",
  )
  p.add_argument(
    "--assets",
    metavar="DIR",
    default=None,
    help="directory of the meshes and textures the MJCF refers to",
  )
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
  p.add_argument(
    "--layout",
    choices=LAYOUTS,
    default="auto",
    help="grid: each copy in a cell; overlay: all copies on one shared"
    " world (terrain); auto: overlay for mobile robots on terrain",
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
  from braxviewer import view_source

  try:
    if view_source.looks_like_file(args.model):
      model, what = view_source.load_file(args.model, args.assets), ""
    else:
      if args.assets:
        raise view_source.ViewError(
          "--assets is for an MJCF file; an env brings its own assets."
        )
      model, what = view_source.load_env(args.model)
      what = f" ({what})"
  except view_source.ViewError as err:
    p.exit(2, f"{p.prog}: error: {err}\n")

  from braxviewer.WebViewerBatched import WebViewerBatched

  try:
    viewer = WebViewerBatched(
      num_envs=args.num_envs,
      grid_dims=args.grid,
      env_offset=args.spacing,
      host=args.host,
      port=args.port,
      mode="off",
      layout=args.layout,
    )
    with cli.training_session(viewer) as session:
      viewer.run()
      viewer.init(model)
      if viewer.page is not None:
        viewer.page.hide_trainer_controls()
      print(
        f"braxviewer: showing {args.num_envs} copies of {args.model}{what};"
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


def _serve(argv: Sequence[str]) -> int:
  p = argparse.ArgumentParser(
    prog="braxviewer serve",
    description="Serve the viewer page apart from training. Training runs"
    " connect to it with viewer = braxviewer.connect('HOST:PORT') (the"
    " address printed below) and pass the viewer to ppo.train, sac.train,"
    " braxviewer.wrap or push to it. Several runs at once: the page shows"
    " one run's envs at a time and overlays every run's curves. The server"
    " outlives the runs; runs outlive the server (they reconnect).",
    formatter_class=cli.HelpFormatter,
  )
  p.add_argument("--host", default="127.0.0.1", help="interface to serve on")
  p.add_argument("--port", type=int, default=8000, help="TCP port")
  p.add_argument(
    "--record-dir",
    metavar="DIR",
    default=None,
    help="record every run to DIR/<run name> (replay with braxviewer replay)",
  )
  p.add_argument(
    "--history",
    type=int,
    default=64,
    help="chunks kept per run for its timeline",
  )
  p.add_argument(
    "--layout",
    choices=LAYOUTS,
    default="auto",
    help="grid, overlay or auto (as for train)",
  )
  p.add_argument(
    "--token",
    default=None,
    help="the server's secret (default: a new one, written to"
    " ~/.cache/braxviewer/serve-PORT.token for this user's runs); runs on"
    " other machines pass it to connect(token=...); the page needs it"
    " beyond loopback or when given",
  )
  p.add_argument(
    "--run-ttl",
    default="24h",
    metavar="TIME",
    help="forget a run this long after its last connection left (its"
    " recording stays): seconds, or 90m, 24h, 7d; 'never' keeps runs",
  )
  p.add_argument(
    "--exit-after", type=float, default=None, help=argparse.SUPPRESS
  )  # for tests: serve this long, exit
  args = p.parse_args(argv)
  from braxviewer.remote.server import ViewerServer

  try:
    server = ViewerServer(
      args.host,
      args.port,
      record_dir=args.record_dir,
      history=args.history,
      layout=args.layout,
      token=args.token if args.token is not None else "auto",
      run_ttl_s=_duration(args.run_ttl),
    )
    with cli.training_session(server) as session:
      server.run()
      print("braxviewer: serving; Ctrl-C to quit.", flush=True)
      if args.exit_after is not None:
        time.sleep(args.exit_after)
      else:
        session.keep_open()
  except (ValueError, OSError) as err:
    p.exit(2, f"{p.prog}: error: {' '.join(str(err).split())}\n")
  return session.exit_code


def _duration(text: str) -> Optional[float]:
  """``"90"``, ``"90s"``, ``"30m"``, ``"24h"``, ``"7d"`` -> seconds;
  ``"never"`` -> None.

  Raises:
    ValueError: anything else, or a time that is not positive.
  """
  text = str(text).strip().lower()
  if text == "never":
    return None
  units = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
  scale = units.get(text[-1:], None)
  number = text[:-1] if scale is not None else text
  try:
    seconds = float(number) * (scale or 1.0)
  except ValueError:
    seconds = float("nan")
  if not seconds > 0 or seconds == float("inf"):
    raise ValueError(
      f"--run-ttl must be a positive time (e.g. 3600, 90m, 24h, 7d) or"
      f" 'never', got {text!r}."
    )
  return seconds


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
  if command == "serve":
    return _serve(rest)
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
