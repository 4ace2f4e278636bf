"""The timeline controls, shared by the live page and the replay page.

Live, the timeline is the last chunks received (scrub back a few seconds to
minutes of training, then *Live* to follow the trainer again); in replay it
is every recorded chunk. Same widgets, same keys, same player underneath.
Only GUI wiring and the text of the status line here.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Protocol, Tuple

import numpy as np
import viser

from braxviewer.core.timeline import ChunkSequence
from braxviewer.web.pacing import PlaybackState
from braxviewer.web.widgets import Guard, set_attr, set_content, set_value


class TimelineControls(Protocol):
  """What the timeline widgets ask of the viewer."""

  def jump(self, index: int) -> None: ...
  def step_chunk(self, delta: int) -> None: ...
  def jump_to_steps(self, env_steps: int) -> None: ...
  def go_live(self) -> None: ...
  def set_paused(self, paused: bool) -> None: ...
  def set_speed(self, speed: float) -> None: ...
  def set_loop(self, loop: bool) -> None: ...
  def set_repeat(self, repeat: bool) -> None: ...
  def set_source(self, source: str) -> None: ...


def short_steps(n: int) -> str:
  """``1234567`` -> ``"1.23M"``."""
  for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
    if abs(n) >= size:
      return f"{n / size:.3g}{unit}"
  return str(int(n))


def step_marks(
  env_steps: np.ndarray, count: int = 4
) -> Optional[Tuple[Tuple[int, str], ...]]:
  """Slider marks: a few chunk numbers (1-based, as the slider's) labelled
  with their env steps."""
  n = len(env_steps)
  if n < 2:
    return None
  idx = sorted({int(round(i)) for i in np.linspace(0, n - 1, count)})
  return tuple((i + 1, short_steps(int(env_steps[i]))) for i in idx)


def status_line(
  timeline: ChunkSequence,
  cursor: int,
  frame: int,
  following: Optional[bool],
  paused: bool,
) -> str:
  """``Chunk 3 / 40 (train) · env step 1,234 · seq 7 · frame 2 / 20``.

  ``following``: None for replay; else whether the trainer is followed."""
  i = cursor - timeline.start
  if 0 <= i < len(timeline):
    text = (
      f"**Chunk** {i + 1} / {len(timeline)} ({timeline.source}) · "
      f"**env step** {int(timeline.env_steps[i]):,} · "
      f"seq {int(timeline.seq[i])} · frame {frame + 1} / "
      f"{int(timeline.num_steps[i])}"
    )
  else:
    kept = "kept" if following is not None else "recorded"
    text = f"{len(timeline)} {timeline.source} chunks {kept}."
  if following is True:
    text += " · _following training_"
  elif following is False:
    text += " · _reviewing_ (Live: back to training)"
  if paused:
    text += " · _paused_"
  return text


_UNSEEN = object()  # no value seen yet


class TimelinePanel:
  """Timeline slider, previous/next chunk (up/down keys), play (space),
  speed, loop, repeat, go to env step; *Live* on the live page.

  The slider and its number box count chunks from 1, as the status line
  does ("Chunk 6 / 43" with 6 in the box). *Live* is red while the page
  follows training and plays, grey while it reviews or is paused.

  Build it inside the GUI container it belongs to.

  Args:
    gui: the viser GUI API.
    controls: receives user actions.
    guard: checks what the page sends (see :class:`~widgets.Guard`).
    live: a trainer feed exists (adds the *Live* button).
    label: the folder's label.
    order: the folder's place among its siblings.
    recorded: replay: the recorded timeline (its env steps mark the slider;
      a live timeline moves, so its slider has no marks).
  """

  def __init__(
    self,
    gui: viser.GuiApi,
    controls: TimelineControls,
    guard: Guard,
    live: bool,
    label: str = "Timeline",
    order: Optional[float] = None,
    recorded: Optional[ChunkSequence] = None,
  ):
    self.live = live
    self._gui = gui
    self._synced: Dict[int, Any] = {}  # per widget: the last value shown
    self._seen: Dict[int, Any] = {}  # per widget: its value at the last call
    c = controls
    with gui.add_folder(label, order=order) as self.folder:
      self.status = gui.add_markdown("")
      n = len(recorded) if recorded is not None else 0
      self.timeline = gui.add_slider(
        "Timeline",
        min=1,
        max=max(n, 2),
        step=1,
        initial_value=1,
        disabled=n < 2,
        marks=(
          step_marks(recorded.env_steps) if recorded is not None else None
        ),
        hint=(
          "The last chunks received (1: the oldest kept); drag to"
          " review (up/down keys: previous/next chunk)."
          if live
          else "Recorded chunks over training (1: the first), labelled"
          " with env steps (up/down keys: previous/next chunk)."
        ),
      )
      self.prev = gui.add_button(
        "Previous chunk", icon=viser.Icon.PLAYER_SKIP_BACK
      )
      self.next = gui.add_button(
        "Next chunk", icon=viser.Icon.PLAYER_SKIP_FORWARD
      )
      self.to_live = (
        gui.add_button(
          "Live",
          icon=viser.Icon.BROADCAST,
          color="gray",
          hint="Follow training from now on: play the newest chunk, then"
          " each one as it arrives (red while following).",
        )
        if live
        else None
      )
      self.play = gui.add_checkbox("Play", True, hint="Key: space.")
      self.speed = gui.add_slider(
        "Speed",
        min=0.1,
        max=4.0,
        step=0.05,
        initial_value=1.0,
        hint="1 = real time",
      )
      self.loop = gui.add_checkbox(
        "Loop",
        not live,
        hint="Start over after the last chunk"
        + ("" if not live else " (otherwise follow training again)")
        + ".",
      )
      self.repeat = gui.add_checkbox(
        "Repeat chunk", False, hint="Play the current chunk again."
      )
      self.goto = gui.add_number("Go to env step", 0, min=0, step=1)
    g = self._guard = guard
    self.timeline.on_update(
      g.on_update(
        "Timeline", lambda: c.jump(self.timeline.value - 1), self.timeline
      )
    )
    self.prev.on_click(
      g.on_event("Previous/Next chunk", lambda e: c.step_chunk(-1))
    )
    self.next.on_click(
      g.on_event("Previous/Next chunk", lambda e: c.step_chunk(+1))
    )
    if self.to_live is not None:
      self.to_live.on_click(g.on_event("Live", lambda e: c.go_live()))
    self.play.on_update(
      g.on_update("Play", lambda: c.set_paused(not self.play.value), self.play)
    )
    self.speed.on_update(
      g.on_update("Speed", lambda: c.set_speed(self.speed.value), self.speed)
    )
    self.loop.on_update(
      g.on_update("Loop", lambda: c.set_loop(self.loop.value), self.loop)
    )
    self.repeat.on_update(
      g.on_update(
        "Repeat chunk", lambda: c.set_repeat(self.repeat.value), self.repeat
      )
    )
    self.goto.on_update(
      g.on_update(
        "Go to env step", lambda: c.jump_to_steps(self.goto.value), self.goto
      )
    )
    up = gui.add_command("Next chunk", hotkey="arrowup")
    down = gui.add_command("Previous chunk", hotkey="arrowdown")
    space = gui.add_command("Play / pause", hotkey="space")
    up.on_trigger(g.on_event("Previous/Next chunk", lambda e: c.step_chunk(+1)))
    down.on_trigger(
      g.on_event("Previous/Next chunk", lambda e: c.step_chunk(-1))
    )
    space.on_trigger(
      g.on_event("Play", lambda e: c.set_paused(self.play.value))
    )

  def add_export_button(
    self, on_click: Callable[[Any], None], label: str, hint: str
  ) -> None:
    """A video button in this folder; ``on_click(client)`` with the page
    that clicked it."""
    with self.folder:
      self.export = self._gui.add_button(
        label, icon=viser.Icon.MOVIE, hint=hint
      )
    self.export.on_click(
      self._guard.on_event(label, lambda e: on_click(e.client))
    )

  def show(self, state: PlaybackState, note: str = "") -> None:
    """Bring the widgets in line with the player (server side)."""
    timeline = state.timeline
    set_content(
      self.status,
      status_line(
        timeline,
        state.cursor,
        state.frame,
        state.following if self.live else None,
        state.paused,
      )
      + note,
    )
    n = len(timeline)
    set_attr(self.timeline, "max", max(n, 2))
    set_attr(self.timeline, "disabled", n < 2)
    i = state.cursor - timeline.start
    if 0 <= i < n:
      self._sync(self.timeline, i + 1)  # 1-based, as the status line
    if self.to_live is not None:
      live = state.following and not state.paused
      set_attr(self.to_live, "color", "red" if live else "gray")
    self._sync(self.play, not state.paused)
    self._sync(self.speed, round(state.speed, 2))
    self._sync(self.loop, state.loop)
    self._sync(self.repeat, state.repeat)

  def _sync(self, widget: Any, value: Any) -> None:
    """``widget`` shows the player's ``value`` when that changed since the
    last call, or when the widget has disagreed with it since the last
    call too (a page's change the player undid, e.g. the pause of a page
    that closed). Not when the widget just changed: a page's change is
    then on its way to the player, and writing the old value back over it
    would undo it (the action reads the widget's value)."""
    key = id(widget)
    current = getattr(widget, "value", value)
    stale = current != value and self._seen.get(key, _UNSEEN) == current
    if self._synced.get(key) != value or stale:
      self._synced[key] = value
      set_value(widget, value)
      current = value
    self._seen[key] = current
