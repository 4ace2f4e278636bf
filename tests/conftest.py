"""Browser fixtures for the page tests: headless Chromium driven by Playwright.

Debian's Chromium is used as installed (never ``playwright install``); page
tests are skipped where it or Playwright is missing. Every page blocks
requests to anything but the local machine and records them, so a test can
assert the page needed no network.
"""

from __future__ import annotations

import io
import os
import shutil
from typing import Callable, List
from urllib.parse import urlparse

import numpy as np
import pytest

CHROMIUM = os.environ.get("BRAXVIEWER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1200, "height": 760}
LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")


@pytest.fixture(scope="session")
def chromium():
  """One headless Chromium for the session."""
  try:
    from playwright.sync_api import sync_playwright
  except ImportError:
    pytest.skip("playwright is not installed")
  if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
  with sync_playwright() as pw:
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


def _local(url: str) -> bool:
  parsed = urlparse(url)
  return parsed.scheme in ("blob", "data") or parsed.hostname in LOCAL_HOSTS


@pytest.fixture
def page(chromium):
  """A fresh page with the network cut off from everything but localhost.

  ``page.blocked`` lists the URLs of requests that were refused.
  """
  context = chromium.new_context(viewport=VIEWPORT)
  blocked: List[str] = []

  def route(r):
    if _local(r.request.url):
      r.continue_()
    else:
      blocked.append(r.request.url)
      r.abort()

  context.route("**/*", route)
  pg = context.new_page()
  pg.blocked = blocked
  yield pg
  context.close()


def _open(pg, url: str, timeout: float = 60.0) -> None:
  pg.goto(url, timeout=timeout * 1000)
  pg.wait_for_selector("canvas", timeout=timeout * 1000)
  pg.get_by_text("Connected").or_(pg.get_by_role("tab", name="Live")).first \
      .wait_for(timeout=timeout * 1000)


@pytest.fixture
def open_page() -> Callable:
  """``open_page(page, url)``: load the viewer and wait until it connected."""
  return _open


def _scene_pixels(pg) -> np.ndarray:
  """RGB pixels of the 3D view, left of the control panel and below the
  browser's software-rendering notice."""
  from PIL import Image
  png = pg.screenshot(clip={"x": 0, "y": 170, "width": 900, "height": 560})
  return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


@pytest.fixture
def scene_pixels() -> Callable:
  """``scene_pixels(page) -> (H, W, 3) uint8`` of the 3D view."""
  return _scene_pixels
