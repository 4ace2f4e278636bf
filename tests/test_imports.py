"""The package's layering, checked on its source: no import loop between its
folders, and no module of the web side reaches JAX or the trainer (every
import counts, also one inside a function)."""

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
TRAINER_SIDE = (
  "braxviewer.brax",
  "braxviewer.train.tap",
  "braxviewer.train.evaluator",
  "braxviewer.train.epoch_calls",
  "braxviewer.app.train",
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


def test_the_source_scan_sees_the_known_edges():
  """The scan itself works: imports at the top and inside functions."""
  assert "braxviewer.web.page" in GRAPH["braxviewer.web.playback"]
  assert "braxviewer.web.viewer" in GRAPH["braxviewer.WebViewerBatched"]
  assert "jax" in GRAPH["braxviewer.train.tap"]
  assert (
    "braxviewer.train.tap" in GRAPH["braxviewer.brax.training.agents.ppo.train"]
  )
  assert len([m for m in MODULES if m.startswith("braxviewer.web.")]) >= 15


def test_no_import_loop_between_folders():
  folders: Dict[str, Set[str]] = {}
  for name, targets in GRAPH.items():
    node = _folder(name)
    folders.setdefault(node, set()).update(
      _folder(t) for t in targets if t in MODULES and _folder(t) != node
    )
  assert _cycles(folders) == []


# The web side and the viewer server/client: no JAX, no trainer.
NO_JAX = ("braxviewer.web", "braxviewer.remote")


def test_no_web_module_reaches_jax_or_the_trainer_in_its_source():
  web = [m for m in MODULES if m.startswith(NO_JAX)]
  for name in web:
    reached = _reach(name)
    assert not reached & set(JAX_SIDE), (name, reached & set(JAX_SIDE))
    trainer = {m for m in reached if m.startswith(TRAINER_SIDE)}
    assert not trainer, (name, trainer)


def test_importing_each_web_module_loads_no_jax_and_no_trainer():
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
