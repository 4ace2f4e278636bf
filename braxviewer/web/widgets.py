"""Small helpers for viser widgets: who changed one, and writes that send
nothing when nothing changed (every assignment is a message to each page)."""

from __future__ import annotations

from typing import Any, Callable


def by_user(event: Any) -> bool:
  """True for a change made in a browser (not by the server assigning)."""
  return getattr(event, "client", None) is not None


def when_by_user(action: Callable[[], object]) -> Callable[[Any], None]:
  """An ``on_update`` callback that runs ``action()`` for changes made in a
  browser only (see :func:`by_user`)."""

  def callback(event: Any) -> None:
    if by_user(event):
      action()

  return callback


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
