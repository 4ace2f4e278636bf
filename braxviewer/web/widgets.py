"""Small helpers for viser widgets: who changed one, and writes that send
nothing when nothing changed (every assignment is a message to each page)."""

from __future__ import annotations

import math
import numbers
import re
import threading
from typing import Any, Callable, Dict, Optional


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
    self._last_good: Dict[int, Any] = {}
    self._acting = threading.local()

  def client(self) -> Optional[int]:
    """The page whose action runs now in this thread (None: Python)."""
    return getattr(self._acting, "client", None)

  def _run(
    self, name: str, action: Callable[[], object], event: Any = None
  ) -> None:
    client = getattr(event, "client", None)
    self._acting.client = getattr(client, "client_id", None)
    try:
      action()
    except (ValueError, TypeError, OverflowError) as err:
      self._warn(
        f"control-{name}",
        f"braxviewer: the page sent a value for {name!r} the viewer cannot use"
        f" ({' '.join(str(err).split())}); it was ignored.",
      )
    finally:
      self._acting.client = None

  def on_update(
    self, name: str, action: Callable[[], object], widget: Any = None
  ) -> Callable[[Any], None]:
    """An ``on_update`` callback: ``action()`` for changes made in a
    browser only (see :func:`by_user`). With ``widget``, a value outside
    what the widget allows (a number off its range or not finite, an option
    it does not have) is put back to the last good one at once: viser keeps
    a widget's value for every page that connects later, and one it cannot
    send (an int beyond 64 bits) would break them all."""
    if widget is not None:
      self._last_good[id(widget)] = widget.value

    def callback(event: Any) -> None:
      if not by_user(event):
        return
      if widget is not None:
        value = widget.value
        fixed = _within(widget, value)
        if fixed is not value:
          widget.value = (
            self._last_good[id(widget)] if fixed is None else (fixed)
          )
          self._warn(
            f"control-{name}",
            f"braxviewer: the page sent a value for {name!r} the viewer cannot use"
            f" ({value!r:.40}); it was "
            + ("ignored." if fixed is None else f"clamped to {fixed!r}."),
          )
          if fixed is None:
            return
        self._last_good[id(widget)] = widget.value
      self._run(name, action, event)

    return callback

  def on_event(
    self, name: str, action: Callable[[Any], object]
  ) -> Callable[[Any], None]:
    """An ``on_click`` / ``on_trigger`` callback: ``action(event)``."""

    def callback(event: Any) -> None:
      self._run(name, lambda: action(event), event)

    return callback


def _within(widget: Any, value: Any) -> Any:
  """``value`` itself when ``widget`` could hold it; clamped into the
  widget's range when it is a number beyond it; None when unusable (not
  finite, beyond 2**53, an option the widget does not have)."""
  options = getattr(widget, "options", None)
  if options is not None:
    return value if value in tuple(options) else None
  if isinstance(value, bool) or not isinstance(value, numbers.Real):
    return value  # checkboxes, text: the action checks them
  if not math.isfinite(float(value)):
    return None
  low, high = getattr(widget, "min", None), getattr(widget, "max", None)
  bound = (
    low
    if low is not None and value < low
    else (high if high is not None and value > high else None)
  )
  if bound is not None:
    value = int(bound) if isinstance(value, numbers.Integral) else float(bound)
  return value if abs(float(value)) <= 2.0**53 else None


def set_value(widget: Any, value: Any) -> None:
  """``widget.value = value`` unless it holds that value already."""
  if widget.value != value:
    widget.value = value


_MARKUP = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>&~\"'=:])")


def literal(text: str) -> str:
  """``text`` shown as it is inside markdown: markup and HTML characters
  escaped, line breaks as spaces (names a training run chose: a run name,
  a phase, a ``state.info`` key)."""
  flat = " ".join(str(text).split())
  return _MARKUP.sub(r"\\\1", flat)


def set_content(markdown: Any, text: str) -> None:
  """``markdown.content = text`` unless it shows that text already."""
  if markdown.content != text:
    markdown.content = text


def set_attr(widget: Any, name: str, value: Any) -> None:
  """``setattr(widget, name, value)`` unless it is set so already."""
  if getattr(widget, name) != value:
    setattr(widget, name, value)
