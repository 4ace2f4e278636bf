"""``braxviewer serve``: a viewer server that training runs connect to.

    python -m braxviewer serve --record-dir runs     # page at http://127.0.0.1:8000

The server is :class:`~braxviewer.remote.server.ViewerServer`; this module
reads the flags (``--token``, ``--run-ttl``, ...) and serves until Ctrl-C.
No JAX.
"""

from __future__ import annotations

import argparse
import time
from typing import Optional, Sequence

from braxviewer.app import cli
from braxviewer.core import console
from braxviewer.scene.layout import LAYOUTS


def main(argv: Sequence[str]) -> int:
  """``braxviewer serve``."""
  p = cli.command_parser(
    "serve",
    "Serve the viewer page apart from training. Training runs"
    " connect to it with viewer = braxviewer.connect('HOST:PORT') (the"
    " address printed below) and pass the viewer to ppo.train, sac.train,"
    " braxviewer.wrap or push to it. Several runs at once: the page shows"
    " one run's envs at a time and overlays every run's curves. The server"
    " outlives the runs; runs outlive the server (they reconnect).",
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
    "--verbose",
    action="store_true",
    help="show every banner libraries print (BRAXVIEWER_VERBOSE=1 too)",
  )
  p.add_argument(
    "--exit-after", type=float, default=None, help=argparse.SUPPRESS
  )  # for tests: serve this long, exit
  args = p.parse_args(argv)
  if args.verbose:
    console.verbose(True)
  from braxviewer.remote.server import ViewerServer

  try:
    server = ViewerServer(
      args.host,
      args.port,
      record_dir=args.record_dir,
      history=args.history,
      layout=args.layout,
      token=args.token if args.token is not None else "auto",
      run_ttl_s=duration(args.run_ttl),
    )
    with cli.training_session(server, what="the server") as session:
      server.run()
      print("braxviewer: serving; Ctrl-C to quit.", flush=True)
      if args.exit_after is not None:
        time.sleep(args.exit_after)
      else:
        session.keep_open(say=False)
  except (ValueError, OSError) as err:
    p.exit(2, f"{p.prog}: error: {' '.join(str(err).split())}\n")
  return session.exit_code


def duration(text: str) -> Optional[float]:
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
