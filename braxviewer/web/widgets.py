"""Small helpers for viser widgets: who changed one, and writes that send
nothing when nothing changed (every assignment is a message to each page)."""

from __future__ import annotations

from typing import Any


def by_user(event: Any) -> bool:
  """True for a change made in a browser (not by the server assigning)."""
  return getattr(event, "client", None) is not None


def set_value(widget: Any, value: Any) -> None:
  """``widget.value = value`` unless it holds that value already."""
  if widget.value != value:
    widget.value = value


def set_content(markdown: Any, text: str) -> None:
  """``markdown.content = text`` unless it shows that text already."""
  if markdown.content != text:
    markdown.content = text


def set_attr(widget: Any, name: str, value: Any) -> None:
  """``setattr(widget, name, value)`` unless it is set so already."""
  if getattr(widget, name) != value:
    setattr(widget, name, value)
