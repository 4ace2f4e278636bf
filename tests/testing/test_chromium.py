"""The browser the page's tests, benches and screenshots launch."""

from __future__ import annotations

from braxviewer.testing import chromium


def test_a_missing_browser_is_named_with_the_way_to_get_one(tmp_path):
  why = chromium.missing(str(tmp_path / "no-chromium-here"))
  assert "no-chromium-here" in why and "make chromium" in why


def test_the_installed_browser_is_found(monkeypatch):
  monkeypatch.delenv(chromium.ENV_VAR, raising=False)
  assert chromium.executable() == "/usr/bin/chromium"
  assert chromium.missing(chromium.executable()) == ""


def test_the_environment_points_at_another_browser(monkeypatch):
  monkeypatch.setenv(chromium.ENV_VAR, "/opt/chrome/chrome")
  assert chromium.executable() == "/opt/chrome/chrome"
