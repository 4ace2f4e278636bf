"""Third-party banners, quiet by default; :func:`verbose` shows them all.

While not verbose (``import braxviewer`` applies it), each one narrowly:

* brax's notice that it is "not actively being maintained" (a
  ``UserWarning`` at every env load): only that message is filtered;
* Warp's start-up banner and its "Module ... load on device" line per
  kernel: Warp's log level is raised to warnings as Warp is imported (or at
  once, if it already is), unless the program set a level of its own;
  Warp's warnings and errors still show;
* viser's boxed banner and "(viser) Server stopped"
  (:mod:`braxviewer.web.server` asks :func:`is_verbose`).

Verbose: ``braxviewer.verbose()``, ``BRAXVIEWER_VERBOSE=1`` in the
environment, or ``--verbose`` on the command line. Errors, warnings and the
program's own prints are never touched. No JAX; imports nothing heavy.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import re
import sys
from types import ModuleType
from typing import Any, Callable, List, Optional, Sequence
import warnings

ENV = "BRAXVIEWER_VERBOSE"
BRAX_NOTICE = (
  "Brax System, piplines and environments are not actively being maintained"
)
_BRAX_PATTERN = re.escape(BRAX_NOTICE)
_WARP_INFO = 20  # warp.LOG_INFO, its default level
_WARP_WARNING = 30  # warp.LOG_WARNING

_verbose: Optional[bool] = None  # set by verbose(); None: the environment's
_warp_raised: List[Any] = []  # the warp config whose level we raised


def is_verbose() -> bool:
  """Whether third-party banners are shown: :func:`verbose`'s setting, else
  ``BRAXVIEWER_VERBOSE`` (anything but empty, 0, false, no)."""
  if _verbose is not None:
    return _verbose
  value = os.environ.get(ENV, "").strip().lower()
  return value not in ("", "0", "false", "no")


def verbose(on: bool = True) -> None:
  """Show (``on``) or quiet third-party banners from now on (see the
  module's doc); call it before the libraries start to see theirs."""
  global _verbose
  _verbose = bool(on)
  apply()


def apply() -> None:
  """Quiet or restore the banners as :func:`is_verbose` says."""
  if is_verbose():
    _unfilter_brax()
    _unhook()
    for config in _warp_raised:
      if getattr(config, "log_level", None) == _WARP_WARNING:
        config.log_level = _WARP_INFO
    _warp_raised.clear()
    return
  warnings.filterwarnings(
    "ignore", message=_BRAX_PATTERN, category=UserWarning, module=r"brax\."
  )
  if "warp" in sys.modules:
    _quiet_warp(sys.modules["warp"])
  elif not any(isinstance(f, _WhenImported) for f in sys.meta_path):
    sys.meta_path.insert(0, _WhenImported("warp", _quiet_warp))


def _quiet_warp(warp: ModuleType) -> None:
  config: Any = getattr(warp, "config", None)
  if is_verbose() or getattr(config, "log_level", None) != _WARP_INFO:
    return  # verbose, an older Warp, or the program chose a level
  config.log_level = _WARP_WARNING
  _warp_raised.append(config)


def _unfilter_brax() -> None:
  filters: Any = warnings.filters  # a list (typed as a Sequence)
  filters[:] = [
    f
    for f in filters
    if not (
      f[0] == "ignore" and f[1] is not None and f[1].pattern == _BRAX_PATTERN
    )
  ]


def _unhook() -> None:
  sys.meta_path[:] = [
    f for f in sys.meta_path if not isinstance(f, _WhenImported)
  ]


class _WhenImported(importlib.abc.MetaPathFinder):
  """Calls ``then(module)`` once the top-level module ``name`` has run
  (one time; then it leaves ``sys.meta_path``)."""

  def __init__(self, name: str, then: Callable[[ModuleType], None]):
    self.name = name
    self.then = then

  def find_spec(
    self,
    fullname: str,
    path: Optional[Sequence[str]],
    target: Optional[ModuleType] = None,
  ) -> Optional[importlib.machinery.ModuleSpec]:
    if fullname != self.name:
      return None
    _unhook()
    spec = None
    for finder in sys.meta_path:
      find = getattr(finder, "find_spec", None)
      spec = find(fullname, path, target) if find is not None else None
      if spec is not None:
        break
    if spec is None or not hasattr(spec.loader, "exec_module"):
      return spec
    spec.loader = _Then(spec.loader, self.then)
    return spec


class _Then(importlib.abc.Loader):
  """A module's own loader, then ``then(module)``."""

  def __init__(self, loader: Any, then: Callable[[ModuleType], None]):
    self.loader = loader
    self.then = then

  def create_module(self, spec: importlib.machinery.ModuleSpec) -> Any:
    return self.loader.create_module(spec)

  def exec_module(self, module: ModuleType) -> None:
    # the module sees its own loader, as without us
    module.__loader__ = self.loader
    if module.__spec__ is not None:
      module.__spec__.loader = self.loader
    self.loader.exec_module(module)
    self.then(module)
