"""After training the page stays to be used, in real headless Chromium.

The README's own ``braxviewer.wrap`` snippet runs as a user's script (its
text taken from README.md; only the port is made free): its
``WebViewerBatched(..., keep_open=True)`` keeps the page up at
``viewer.close()``. The page says the stream ended, its timeline scrubs,
*Live* goes back to the newest chunk, *Save clip* downloads an MP4 as a
file, and *Close the viewer* ends the script.
"""

from __future__ import annotations

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def readme_snippet(marker: str) -> str:
  """The README's Python code block that holds ``marker``."""
  text = (ROOT / "README.md").read_text()
  blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
  found = [b for b in blocks if marker in b]
  assert len(found) == 1, f"README has {len(found)} blocks with {marker!r}"
  return found[0]


def _timeline(page) -> str:
  """The timeline's line: ``Chunk 31 / 31 (train) · ... · following
  training``."""
  line = page.locator("p", has_text=re.compile(r"^Chunk \d+ / \d+"))
  return line.first.inner_text(timeout=5000)


@pytest.mark.slow
def test_a_readme_script_keeps_a_usable_page_after_training(
  spawn, page, open_page, wait_until, tmp_path
):
  script = readme_snippet("braxviewer.wrap(env, viewer)")
  assert "keep_open=True" in script and "viewer.close()" in script
  script = script.replace("keep_open=True", "keep_open=True, port=0")
  child = spawn(["-c", script], cwd=ROOT, merge_stderr=True)
  url = child.wait_for("viewer running at", timeout=300).split()[-1]
  child.wait_for("stays up", timeout=600)  # the loop ran; close() holds
  open_page(page, url)
  page.get_by_role("tab", name="Live").click()
  status = page.locator("p", has_text="Training:").first
  assert wait_until(lambda: "Training: ended" in status.inner_text(), 20)
  assert page.get_by_role("button", name="Close the viewer").is_visible()
  # Scrub back: the timeline reviews an older chunk.
  assert wait_until(lambda: "following training" in _timeline(page), 20)
  for _ in range(3):
    page.get_by_role("button", name="Previous chunk").click()
  assert wait_until(lambda: "reviewing" in _timeline(page), 20)
  reviewed = _timeline(page)
  # Live: the newest chunk again.
  page.get_by_role("button", name="Live").click()
  assert wait_until(lambda: "following training" in _timeline(page), 20)
  assert _timeline(page) != reviewed
  # Save clip: the browser gets a file.
  with page.expect_download(timeout=300_000) as info:
    page.get_by_role("button", name="Save clip").click()
  path = tmp_path / info.value.suggested_filename
  info.value.save_as(path)
  data = path.read_bytes()
  assert path.suffix == ".mp4" and len(data) > 1000 and data[4:8] == b"ftyp"
  page.screenshot(path=str(tmp_path / "after_training.png"))
  # The page's button ends the script (as Ctrl-C would), cleanly.
  page.get_by_role("button", name="Close the viewer").click()
  assert child.finish(timeout=60) == 0, child.stdout
  assert "Traceback" not in child.stdout, child.stdout
