"""The package's layering, checked on its source: every arrow between its
packages goes the allowed way (so no loop between them), no module below
the trainer reaches JAX, and the original API's import paths still work
(every import counts, also one inside a function)."""

from __future__ import annotations

import ast
import json
import pathlib
import subprocess
import sys
from typing import Dict, List, Set

import braxviewer

PACKAGE = pathlib.Path(braxviewer.__file__).parent
JAX_SIDE = ("jax", "jaxlib", "flax", "optax", "brax")  # third-party roots
TRAINER_SIDE = ("braxviewer.brax", "braxviewer.train", "braxviewer.app")

# The layers, bottom up, and the packages each one may import (the package
# top, braxviewer/__init__ and __main__, and the original API's modules,
# may import any). Everything else is an arrow up or sideways.
ALLOWED = {
  "core": set(),
  "scene": {"core"},
  "viewer": {"core", "scene"},
  "record": {"core", "scene"},
  "testing": {"core", "scene"},
  "train": {"core", "scene"},
  "web": {"core", "scene", "viewer", "record"},
  "remote": {"core", "scene", "viewer", "record", "web"},
  "app": {"core", "scene", "viewer", "record", "train", "web", "remote"},
  "brax": {"train"},  # brax's import paths with a braxviewer. prefix
}
TOP = (
  "braxviewer",
  "braxviewer.__main__",
  "braxviewer.WebViewer",
  "braxviewer.WebViewerBatched",
)
# No JAX below the trainer: the contract, the scene, the viewers, the page.
NO_JAX = tuple(
  f"braxviewer.{p}" for p in ALLOWED if p not in ("train", "app", "brax")
)


def _modules() -> Dict[str, pathlib.Path]:
  out = {}
  for path in sorted(PACKAGE.rglob("*.py")):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
      parts.pop()
    out[".".join(parts)] = path
  return out


MODULES = _modules()


def _imports(name: str) -> Set[str]:
  """Every module ``name`` imports anywhere in its source: package modules
  by full name, others by their top-level name."""
  path = MODULES[name]
  package = name if path.name == "__init__.py" else name.rpartition(".")[0]
  found: Set[str] = set()
  for node in ast.walk(ast.parse(path.read_text(), str(path))):
    if isinstance(node, ast.Import):
      targets = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:
        anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
        base = ".".join(anchor + ([base] if base else []))
      # ``from pkg import mod`` imports mod; ``from mod import name``, mod
      # (a package's __init__ runs on any import from it: not an edge)
      targets = [
        f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
        for alias in node.names
      ]
    else:
      continue
    for target in targets:
      if target.split(".")[0] != "braxviewer":
        found.add(target.split(".")[0])
      elif target in MODULES:
        found.add(target)
  found.discard(name)
  return found


GRAPH = {name: _imports(name) for name in MODULES}


def _folder(name: str) -> str:
  """A module's node in the folder graph: its subpackage (web, record,
  brax), or itself for a module at the package's top."""
  parts = name.split(".")
  if len(parts) > 2 or (
    len(parts) == 2 and MODULES[name].name == "__init__.py"
  ):
    return ".".join(parts[:2])
  return name


def _cycles(edges: Dict[str, Set[str]]) -> List[List[str]]:
  """Strongly connected components with more than one node (Tarjan)."""
  index: Dict[str, int] = {}
  low: Dict[str, int] = {}
  stack: List[str] = []
  on_stack: Set[str] = set()
  out: List[List[str]] = []

  def visit(v: str) -> None:
    index[v] = low[v] = len(index)
    stack.append(v)
    on_stack.add(v)
    for w in edges.get(v, ()):
      if w not in index:
        visit(w)
        low[v] = min(low[v], low[w])
      elif w in on_stack:
        low[v] = min(low[v], index[w])
    if low[v] == index[v]:
      component = []
      while True:
        w = stack.pop()
        on_stack.discard(w)
        component.append(w)
        if w == v:
          break
      if len(component) > 1:
        out.append(sorted(component))

  for v in sorted(edges):
    if v not in index:
      visit(v)
  return out


def _reach(start: str) -> Set[str]:
  seen, todo = set(), [start]
  while todo:
    for w in GRAPH.get(todo.pop(), ()):
      if w not in seen:
        seen.add(w)
        todo.append(w)
  return seen


def _package(name: str) -> str:
  """A module's layer: its package under braxviewer (or "" at the top)."""
  parts = name.split(".")
  return (
    ""
    if name in TOP
    or len(parts) < 3
    and name not in (f"braxviewer.{p}" for p in ALLOWED)
    else parts[1]
  )


def test_the_source_scan_sees_the_known_edges():
  """The scan itself works: imports at the top and inside functions."""
  assert "braxviewer.web.page" in GRAPH["braxviewer.web.playback"]
  assert "braxviewer.web.viewer" in GRAPH["braxviewer.WebViewerBatched"]
  assert "jax" in GRAPH["braxviewer.train.tap"]
  assert "braxviewer.train.tap" in GRAPH["braxviewer.train.ppo"]
  assert (
    "braxviewer.train.ppo" in GRAPH["braxviewer.brax.training.agents.ppo.train"]
  )
  assert len([m for m in MODULES if m.startswith("braxviewer.web.")]) >= 15


def test_every_module_sits_in_a_layer_package():
  loose = [m for m in MODULES if _package(m) == "" and m not in TOP]
  assert loose == []


def test_every_arrow_between_packages_goes_the_allowed_way():
  wrong = {}
  for name, targets in GRAPH.items():
    mine = _package(name)
    if not mine:
      continue
    for target in targets:
      theirs = _package(target) if target in MODULES else None
      if theirs is None or theirs == mine:
        continue
      if not theirs or theirs not in ALLOWED[mine]:
        wrong.setdefault(name, []).append(target)
  assert wrong == {}


def test_no_import_loop_between_packages():
  packages: Dict[str, Set[str]] = {}
  for name, targets in GRAPH.items():
    node = _package(name) or name
    packages.setdefault(node, set()).update(
      _package(t) or t for t in targets if t in MODULES
    )
  for node, targets in packages.items():
    targets.discard(node)
  assert _cycles(packages) == []


def test_no_module_below_the_trainer_reaches_jax_or_the_trainer():
  for name in [m for m in MODULES if m.startswith(NO_JAX)]:
    reached = _reach(name)
    assert not reached & set(JAX_SIDE), (name, reached & set(JAX_SIDE))
    trainer = {m for m in reached if m.startswith(TRAINER_SIDE)}
    assert not trainer, (name, trainer)


def test_importing_each_module_below_the_trainer_loads_no_jax():
  """The same at run time (third-party packages included), one module at a
  time: the first that loads JAX or the trainer is named."""
  web = sorted(m for m in MODULES if m.startswith(NO_JAX))
  code = (
    "import importlib, json, sys\n"
    f"bad = {list(JAX_SIDE + TRAINER_SIDE)!r}\n"
    "out = {}\n"
    f"for name in {web!r}:\n"
    "  importlib.import_module(name)\n"
    "  out[name] = sorted(m for m in sys.modules if m in bad)\n"
    "print(json.dumps(out))\n"
  )
  result = subprocess.run(
    [sys.executable, "-c", code], capture_output=True, text=True, check=True
  )
  loaded = json.loads(result.stdout.strip().splitlines()[-1])
  assert sorted(loaded) == web
  assert {name: mods for name, mods in loaded.items() if mods} == {}


def test_the_original_apis_import_paths_still_work():
  """Scripts written for the original project and for brax run unchanged."""
  code = (
    "from braxviewer.WebViewer import WebViewer\n"
    "from braxviewer.WebViewerBatched import WebViewerBatched\n"
    "from braxviewer import WebViewer as W, WebViewerBatched as B\n"
    "from braxviewer.brax.training.agents.ppo import train as ppo\n"
    "from braxviewer.brax.training.agents.sac import train as sac\n"
    "from braxviewer.brax.brax.training.agents.ppo import train as old_ppo\n"
    "from braxviewer.brax.brax.training.agents.sac import train as old_sac\n"
    "import braxviewer\n"
    "assert W is WebViewer and B is WebViewerBatched\n"
    "assert issubclass(WebViewer, WebViewerBatched)\n"
    "assert callable(WebViewerBatched.concatenate_envs_xml)\n"
    "assert ppo.train is old_ppo.train and sac.train is old_sac.train\n"
    "assert callable(braxviewer.wrap) and callable(braxviewer.connect)\n"
    "print('ok')\n"
  )
  result = subprocess.run(
    [sys.executable, "-c", code], capture_output=True, text=True
  )
  assert result.returncode == 0 and "ok" in result.stdout, result.stderr
