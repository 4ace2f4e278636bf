"""Headless Chromium for the page's screenshots, benches and tests.

Nothing the viewer itself needs: ``tools/screenshot.py``, ``bench/web_*.py``
and the test suite open the page in the same browser, launched the same way
(Debian's ``chromium``, driven by Python ``playwright``; ``make chromium``
installs both).
"""

from __future__ import annotations

import os
import shutil
from typing import Any, Sequence

ENV_VAR = "BRAXVIEWER_CHROMIUM"
# Software WebGL (SwiftShader) and no network beyond the page.
ARGS = (
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
)


def executable() -> str:
  """The Chromium to launch: ``$BRAXVIEWER_CHROMIUM``, else Debian's."""
  return os.environ.get(ENV_VAR, "/usr/bin/chromium")


def missing(path: str) -> str:
  """Why Chromium at ``path`` cannot be launched ("" when it can)."""
  try:
    import playwright  # noqa: F401
  except ImportError:
    return "Python playwright is not installed (make chromium installs it)"
  if not (os.path.exists(path) or shutil.which(path)):
    return (
      f"no Chromium at {path}: make chromium (Debian: apt-get install"
      f" chromium), or point {ENV_VAR} at one"
    )
  return ""


def launch(playwright: Any, path: str = "", extra: Sequence[str] = ()) -> Any:
  """A headless Chromium from a started ``sync_playwright()``."""
  return playwright.chromium.launch(
    executable_path=path or executable(), args=[*ARGS, *extra]
  )
