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

import sys
from typing import Optional, Sequence

COMMANDS = {
  "train": "train a brax env with PPO and watch it live (the main demo)",
  "view": "show N copies of a model (MJCF, Playground or brax env) on the grid",
  "replay": "replay a recording (record_dir=) in the viewer's page",
  "export": "render a recording to MP4 (one env, or --grid)",
  "serve": "a viewer server that training runs connect to (several runs)",
}


def main(argv: Optional[Sequence[str]] = None) -> int:
  argv = list(sys.argv[1:] if argv is None else argv)
  if not argv or argv[0] in ("-h", "--help"):
    print((__doc__ or "").strip().replace("``", ""))  # plain, not RST
    print("\ncommands:")
    for name, text in COMMANDS.items():
      print(f"  {name:8s} {text}")
    print(
      "\nbraxviewer COMMAND --help lists a command's flags."
      "\nBRAXVIEWER_VERBOSE=1 (or train, view, serve --verbose) shows every"
      " library banner and line."
    )
    return 0 if argv else 2
  command, rest = argv[0], argv[1:]
  if command == "train":
    from braxviewer.app import train as train_demo

    sys.argv[0] = "braxviewer train"
    return train_demo.main(rest)
  if command == "view":
    from braxviewer.app import view

    return view.main(rest)
  if command == "serve":
    from braxviewer.app import serve

    return serve.main(rest)
  if command in ("replay", "export"):
    from braxviewer.record.offscreen import configure_gl

    configure_gl()  # before mujoco is imported
    from braxviewer.app import export, replay

    return (replay if command == "replay" else export).main(rest)
  print(
    f"braxviewer: error: unknown command {command!r}; commands:"
    f" {', '.join(COMMANDS)}.",
    file=sys.stderr,
  )
  return 2
