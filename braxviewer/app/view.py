"""``braxviewer view MODEL``: N copies of a model on the training grid.

    python -m braxviewer view robot.xml --num-envs 16
    python -m braxviewer view ReacherEasy

A static page to check a model and the layout before training: an MJCF
file, a MuJoCo Playground env or a brax env, drawn as the env compiles it.
The command's flags and the model's loading (:func:`load_file`,
:func:`load_env`, with suggestions for a misspelt name) live here.
"""

from __future__ import annotations

import argparse
import difflib
import os
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from braxviewer.app import cli
from braxviewer.core import console
from braxviewer.scene.layout import LAYOUTS

PLAYGROUND_INSTALL = "pip install playground"


class ViewError(ValueError):
  """A name or file that cannot be shown; the message says what to do."""


def looks_like_file(name: str) -> bool:
  """Whether ``name`` is meant as a file (not an env name)."""
  return (
    os.path.exists(name)
    or name.lower().endswith((".xml", ".mjcf"))
    or os.sep in name
    or "/" in name
  )


def read_assets(directory: str) -> Dict[str, bytes]:
  """Every file under ``directory`` by its relative path, and by its bare
  name where that is unique (MJCF refers to meshes either way)."""
  if not os.path.isdir(directory):
    raise ViewError(f"--assets {directory}: no such directory.")
  files: Dict[str, bytes] = {}
  names: Dict[str, List[str]] = {}
  for root, dirs, found in os.walk(directory):
    dirs[:] = sorted(d for d in dirs if not d.startswith("."))
    for name in sorted(found):
      path = os.path.join(root, name)
      rel = os.path.relpath(path, directory).replace(os.sep, "/")
      with open(path, "rb") as f:
        files[rel] = f.read()
      names.setdefault(name, []).append(rel)
  for name, rels in names.items():
    if len(rels) == 1:
      files.setdefault(name, files[rels[0]])
  return files


def load_file(path: str, assets_dir: Optional[str] = None) -> Any:
  """The compiled model of an MJCF file (meshes and textures also looked up
  under ``assets_dir``)."""
  import mujoco

  if not os.path.isfile(path):
    raise ViewError(f"no such MJCF file: {path}")
  assets = read_assets(assets_dir) if assets_dir else {}
  try:
    return mujoco.MjModel.from_xml_path(path, assets or None)
  except ValueError as err:
    message = " ".join(str(err).split())
    hint = ""
    if not assets_dir and ("file" in message or "resource" in message):
      hint = (
        " If its meshes or textures live in another directory, give it"
        " with --assets DIR."
      )
    raise ViewError(f"MuJoCo cannot load {path}: {message}{hint}") from None


def playground_names() -> Optional[Tuple[str, ...]]:
  """MuJoCo Playground's env names, or None when it is not installed."""
  try:
    from mujoco_playground import registry
  except ImportError:
    return None
  return tuple(registry.ALL_ENVS)


def brax_names() -> Tuple[str, ...]:
  """brax's env names (empty when brax is not installed)."""
  try:
    from brax import envs
  except ImportError:
    return ()
  return tuple(sorted(getattr(envs, "_envs", {})))


def suggestions(name: str, names: Sequence[str]) -> List[str]:
  """Up to three names close to ``name`` (case ignored)."""
  lower = {n.lower(): n for n in names}
  close = difflib.get_close_matches(name.lower(), list(lower), n=3, cutoff=0.6)
  starts = [n for k, n in lower.items() if k.startswith(name.lower())]
  out: List[str] = []
  for n in [lower[k] for k in close] + starts:
    if n not in out:
      out.append(n)
  return out[:3]


def load_env(name: str) -> Tuple[Any, str]:
  """A MuJoCo Playground or brax env by name, and what it is, for messages.

  Raises:
    ViewError: an unknown name (with close matches and, where MuJoCo
      Playground is missing, how to install it), or an env that fails to
      load.
  """
  playground = playground_names()
  if playground is not None and name in playground:
    from mujoco_playground import registry

    try:
      return registry.load(name), "MuJoCo Playground env"
    except Exception as err:
      message = " ".join(str(err).split())[:300]
      raise ViewError(
        f"MuJoCo Playground could not load {name}: {message}"
      ) from None
  brax = brax_names()
  if name in brax:
    from brax import envs

    return envs.get_environment(name), "brax env"
  known = list(playground or ()) + list(brax)
  close = suggestions(name, known)
  message = f"no such MJCF file or env: {name!r}."
  if close:
    message += f" Did you mean {', '.join(close)}?"
  if playground is None:
    message += (
      " MuJoCo Playground is not installed: for its envs,"
      f" {PLAYGROUND_INSTALL}."
    )
  else:
    message += (
      " Give an MJCF file, a MuJoCo Playground env (e.g."
      f" {playground[0]}) or a brax env (e.g."
      f" {brax[0] if brax else 'ant'})."
    )
  raise ViewError(message)


def main(argv: Sequence[str]) -> int:
  """``braxviewer view``."""
  p = cli.command_parser(
    "view",
    "Serve a static page with N copies of a model on the"
    " training grid, to check the model and the layout before training:"
    " an MJCF file, a MuJoCo Playground env (e.g. ReacherEasy) or a brax"
    " env (e.g. ant), drawn as the env compiles it.",
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
  for flag, kind, names, text in (
    ("--grid", int, ("X", "Y", "Z"), "grid dimensions (default: near-square)"),
    (
      "--spacing",
      float,
      ("DX", "DY", "DZ"),
      "distance between copies (default: from the model)",
    ),
  ):
    p.add_argument(flag, type=kind, nargs=3, metavar=names, help=text)
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
  if args.num_envs < 1:
    p.exit(
      2,
      f"{p.prog}: error: --num-envs must be at least 1, got {args.num_envs}.\n",
    )
  try:
    if looks_like_file(args.model):
      model, what = load_file(args.model, args.assets), ""
    else:
      if args.assets:
        raise ViewError(
          "--assets is for an MJCF file; an env brings its own assets."
        )
      model, what = load_env(args.model)
      what = f" ({what})"
  except ViewError as err:
    p.exit(2, f"{p.prog}: error: {err}\n")

  from braxviewer.web.viewer import WebViewerBatched

  try:
    viewer = WebViewerBatched(
      num_envs=args.num_envs,
      grid_dims=args.grid,
      env_offset=args.spacing,
      mode="off",
      **cli.page_options(args),
    )
    with cli.training_session(viewer, what="the viewer") as session:
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
        session.keep_open(say=False)
  except ValueError as err:
    p.exit(2, f"{p.prog}: error: {err}\n")
  return session.exit_code
