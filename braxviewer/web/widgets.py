"""Small helpers for viser widgets: who changed one, and writes that send
nothing when nothing changed (every assignment is a message to each page)."""

from __future__ import annotations

from typing import Any, Callable


def by_user(event: Any) -> bool:
  """True for a change made in a browser (not by the server assigning)."""
  return getattr(event, "client", None) is not None


class Guard:
  """Runs what the page asks for. Anything a client sends is checked where
  it arrives: a value the viewer cannot use (an unknown mode, a NaN index,
  a speed out of range...) is ignored with one warning per control, never a
  traceback in viser's threads and never a viewer turned off.

  Args:
    warn: ``warn(key, message)``, once per key.
  """

  def __init__(self, warn: Callable[[str, str], None]):
    self._warn = warn

  def _run(self, name: str, action: Callable[[], object]) -> None:
    try:
      action()
    except (ValueError, TypeError, OverflowError) as err:
      self._warn(
        f"control-{name}",
        f"braxviewer: the page sent a {name} the viewer cannot use"
        f" ({' '.join(str(err).split())}); it was ignored.",
      )

  def on_update(
    self, name: str, action: Callable[[], object]
  ) -> Callable[[Any], None]:
    """An ``on_update`` callback: ``action()`` for changes made in a
    browser only (see :func:`by_user`)."""

    def callback(event: Any) -> None:
      if by_user(event):
        self._run(name, action)

    return callback

  def on_event(
    self, name: str, action: Callable[[Any], object]
  ) -> Callable[[Any], None]:
    """An ``on_click`` / ``on_trigger`` callback: ``action(event)``."""

    def callback(event: Any) -> None:
      self._run(name, lambda: action(event))

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
