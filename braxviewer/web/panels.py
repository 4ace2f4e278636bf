"""The page's control panel: streaming mode, status, display, envs, training.

Builds the viser GUI once and forwards user actions to whoever handles them:
the display (env selection, follow, camera: the page), the stream (mode,
source: the viewer) and the timeline (the playback). Only GUI wiring and the
text of the status block here; no state beyond the widget handles.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Optional, Protocol

import viser

from braxviewer.core import run_state
from braxviewer.core.timeline import ChunkSequence
from braxviewer.web.camera import PRESETS
from braxviewer.web.plots import ProgressCurves, TraceChart
from braxviewer.web.timeline_panel import TimelineControls, TimelinePanel
from braxviewer.web.traces import EnvTraces
from braxviewer.web.widgets import (
  Guard,
  literal,
  set_attr,
  set_content,
  set_value,
)

MODES = ("off", "live", "sync")
SOURCES = ("train", "eval")


class StreamControls(Protocol):
  """What the panel asks of the stream: the mode the trainer runs in."""

  def set_mode(self, mode: str) -> None: ...


class DisplayControls(Protocol):
  """What the panel asks of the display when the user acts."""

  def select_env(self, env: int) -> None: ...
  def step_env(self, delta: int) -> None: ...
  def set_follow(self, follow: bool) -> None: ...
  def set_show_only(self, only: bool) -> None: ...
  def set_shadows(self, shadows: bool) -> None: ...
  def set_drawn(self, category: str, visible: bool) -> None: ...
  def apply_camera(self, preset: str) -> None: ...


@dataclasses.dataclass
class Status:
  """What the status block shows."""

  trainer_mode: Optional[str] = None  # the mode the trainer runs in
  wanted_mode: str = "live"
  env_steps: int = 0
  env_steps_per_s: float = 0.0
  received_per_s: float = 0.0
  shown_per_s: float = 0.0
  dropped: int = 0
  latency_ms: Optional[float] = None
  source: str = "train"
  note: str = ""
  state: str = run_state.WAITING  # one of run_state.STATES
  state_text: str = run_state.WAITING  # e.g. "compiling, 42 s"

  @classmethod
  def of(
    cls,
    stats: Mapping[str, Any],
    trainer_mode: Optional[str],
    wanted_mode: str,
    source: str,
    note: str = "",
    *,
    state: str = run_state.WAITING,
    state_text: str = "",
  ) -> "Status":
    """The status of a viewer's :meth:`stats` and modes."""
    latency = stats["latency_s"]
    return cls(
      trainer_mode=trainer_mode,
      wanted_mode=wanted_mode,
      env_steps=stats["env_steps"],
      env_steps_per_s=stats["env_steps_per_s"],
      received_per_s=stats["received_per_s"],
      shown_per_s=stats["shown_per_s"],
      dropped=stats["frames_dropped"],
      latency_ms=None if latency is None else 1e3 * latency,
      source=source,
      note=note,
      state=state,
      state_text=state_text or state,
    )

  def streaming(self) -> str:
    """What the trainer streams now, while it runs (``""``: it does not)."""
    if self.state in run_state.RUNNING and self.trainer_mode:
      if self.wanted_mode != self.trainer_mode:
        return f"{self.trainer_mode} (switching to {self.wanted_mode})"
      return self.trainer_mode
    return ""

  def markdown(self) -> str:
    latency = "–" if self.latency_ms is None else f"{self.latency_ms:,.0f} ms"
    lines = [f"**Training:** {literal(self.state_text)}"]
    streaming = self.streaming()
    if streaming:
      lines.append(f"**Streaming:** `{streaming}`")
    lines += [
      f"**Env steps:** {self.env_steps:,} &nbsp; **/s:** "
      f"{self.env_steps_per_s:,.0f}",
      f"**Frames/s:** received {self.received_per_s:,.0f} · shown "
      f"{self.shown_per_s:,.0f}",
      f"**Dropped frames:** {self.dropped:,}",
      f"**Latency** (unroll end → sent): {latency}",
    ]
    if self.note:
      lines.append(f"_{self.note}_")
    return "  \n".join(lines)


class Panels:
  """The GUI widgets and their wiring.

  Args:
    server: the viser server.
    stream: receives mode changes (None: no trainer; replay).
    display: receives env and camera choices.
    timeline: receives the timeline controls and the source.
    guard: checks what the page sends (bad values: ignored, one warning).
    num_envs: envs on display (env slider range).
    mode: the initially wanted streaming mode.
    title: shown in the panel title bar.
    recorded: replay: the recording's timeline. Its timeline controls then
      come first, in a "Replay" folder, and the trainer's mode and status
      are hidden; live, they sit in the Live tab.
  """

  def __init__(
    self,
    server: viser.ViserServer,
    *,
    stream: Optional[StreamControls],
    display: DisplayControls,
    timeline: TimelineControls,
    guard: Guard,
    num_envs: int,
    mode: str,
    title: str = "braxviewer",
    recorded: Optional[ChunkSequence] = None,
  ):
    gui = server.gui
    self._gui = gui
    gui.configure_theme(
      control_width="medium",
      show_share_button=False,
      brand_color=(38, 110, 200),
    )
    gui.set_panel_label(title)
    live = recorded is None
    # Shown while a script keeps the page up after its work (viewer.wait()).
    self.quit = gui.add_button(
      "Close the viewer",
      icon=viser.Icon.POWER,
      color="red",
      visible=False,
      order=-2,
      hint="End the script that keeps this page up (as Ctrl-C there does).",
    )
    self._on_quit: Optional[Callable[[], None]] = None
    self.quit.on_click(guard.on_event("Quit", lambda e: self._quit()))
    if not live:
      self.timeline = TimelinePanel(
        gui,
        timeline,
        guard,
        live=False,
        label="Replay",
        order=-1,
        recorded=recorded,
      )
    tabs = gui.add_tab_group()
    self.live_tab = tabs.add_tab("Live", viser.Icon.PLAYER_PLAY)
    with self.live_tab:
      self.mode = gui.add_dropdown(
        "Streaming",
        MODES,
        initial_value=mode,
        hint="off: training runs alone; live: newest chunks, never waits;"
        " sync: training waits until each chunk was shown.",
      )
      self.status = gui.add_markdown(Status(wanted_mode=mode).markdown())
      self.source = gui.add_dropdown(
        "Source",
        SOURCES,
        initial_value="train",
        hint="Training unrolls or eval rollouts.",
      )
      if live:
        self.timeline = TimelinePanel(gui, timeline, guard, live=True)
      else:
        self.mode.visible = self.status.visible = False
      self.shadows = gui.add_checkbox(
        "Shadows",
        False,
        hint="Nicer, but halves the frame rate of browsers without a GPU.",
      )
      self.sites = gui.add_checkbox(
        "Sites", True, hint="The model's visible sites (groups 0-2)."
      )
      self.tendons = gui.add_checkbox(
        "Tendons", True, hint="Spatial tendons, as MuJoCo draws them."
      )
    with tabs.add_tab("Envs", viser.Icon.GRID_DOTS):
      self.env = gui.add_slider(
        "Env",
        min=0,
        max=max(num_envs - 1, 1),
        step=1,
        initial_value=0,
        disabled=num_envs < 2,
        hint="Select an env (or click it, or use the arrow keys).",
      )
      self.follow = gui.add_checkbox(
        "Follow", False, hint="Keep the selected env centred."
      )
      self.only = gui.add_checkbox("Only selected", False)
      self.camera = gui.add_button_group("Camera", PRESETS)
      self.layout_note = gui.add_markdown("", visible=False)
      self.env_info = gui.add_markdown("")
      self.env_folder = gui.add_folder("Reward terms")
      # The env's streamed state.info (commands, curriculum): shown once
      # a stream carries some.
      self.info_folder = gui.add_folder("State info", visible=False)
      with self.info_folder:
        self.info_values = gui.add_markdown("")
    self._training_tab = tabs.add_tab("Training", viser.Icon.CHART_LINE)
    with self._training_tab:
      self.training_folder = gui.add_folder("Progress")
    self.curves = ProgressCurves(gui, self.training_folder)
    self.trace_chart = TraceChart(gui, self.env_folder)
    self.info_chart = TraceChart(
      gui, self.info_folder, title="Selected env: state.info"
    )
    self._wire(guard, stream, display, timeline)

  def _wire(
    self,
    g: Guard,
    stream: Optional[StreamControls],
    c: DisplayControls,
    timeline: TimelineControls,
  ) -> None:
    if stream is not None:
      self.mode.on_update(
        g.on_update(
          "Streaming", lambda: stream.set_mode(self.mode.value), self.mode
        )
      )
    self.source.on_update(
      g.on_update(
        "Source", lambda: timeline.set_source(self.source.value), self.source
      )
    )
    self.env.on_update(
      g.on_update("Env", lambda: c.select_env(self.env.value), self.env)
    )
    self.follow.on_update(
      g.on_update(
        "Follow", lambda: c.set_follow(self.follow.value), self.follow
      )
    )
    self.only.on_update(
      g.on_update(
        "Only selected", lambda: c.set_show_only(self.only.value), self.only
      )
    )
    self.shadows.on_update(
      g.on_update(
        "Shadows", lambda: c.set_shadows(self.shadows.value), self.shadows
      )
    )
    self.camera.on_click(
      g.on_event("Camera", lambda e: c.apply_camera(self.camera.value))
    )
    self._wire_drawn(g, c)
    nxt = self._gui.add_command("Next env", hotkey="arrowright")
    prev = self._gui.add_command("Previous env", hotkey="arrowleft")
    nxt.on_trigger(g.on_event("Next env", lambda e: c.step_env(+1)))
    prev.on_trigger(g.on_event("Previous env", lambda e: c.step_env(-1)))

  def _wire_drawn(self, g: Guard, c: DisplayControls) -> None:
    """The Sites and Tendons checkboxes."""
    for label, box, category in (
      ("Sites", self.sites, "site"),
      ("Tendons", self.tendons, "tendon"),
    ):
      box.on_update(
        g.on_update(
          label,
          lambda box=box, category=category: c.set_drawn(category, box.value),
          box,
        )
      )

  def show_drawn(self, sites: bool, tendons: bool) -> None:
    """The Sites and Tendons checkboxes as the display is now."""
    set_value(self.sites, sites)
    set_value(self.tendons, tendons)

  def set_num_envs(self, num_envs: int) -> None:
    set_attr(self.env, "max", max(num_envs - 1, 1))
    set_attr(self.env, "disabled", num_envs < 2)
    if self.env.value > num_envs - 1:
      self.env.value = 0

  def show_layout(self, layout: str) -> None:
    """Say how the envs are laid out when it is not the grid."""
    overlay = layout == "overlay"
    set_content(
      self.layout_note,
      "*Overlay: every env is drawn where it is on the one shared world"
      ' (`layout="grid"` puts each in a cell of its own).*'
      if overlay
      else "",
    )
    set_attr(self.layout_note, "visible", overlay)

  def show_status(self, status: Status) -> None:
    set_content(self.status, status.markdown())

  def show_mode(self, mode: str) -> None:
    set_value(self.mode, mode)

  def offer_quit(self, on_quit: Optional[Callable[[], None]]) -> None:
    """Show the *Close the viewer* button, calling ``on_quit`` on a click
    (None: hide it)."""
    self._on_quit = on_quit
    set_attr(self.quit, "visible", on_quit is not None)

  def _quit(self) -> None:
    on_quit = self._on_quit
    if on_quit is not None:
      on_quit()

  def show_display(
    self, env: int, follow: bool, only: bool, shadows: bool
  ) -> None:
    """The Envs tab's widgets as the display is now (changes from Python)."""
    set_value(self.env, env)
    set_value(self.follow, follow)
    set_value(self.only, only)
    set_value(self.shadows, shadows)

  def hide_trainer_controls(self) -> None:
    """A page with no trainer (a model check): no streaming mode, status,
    timeline or training curves to show."""
    self.mode.visible = self.status.visible = self.source.visible = False
    self.timeline.folder.visible = False
    if not self._training_tab.removed:
      self._training_tab.remove()

  def rebuild_charts(self) -> None:
    """Charts are re-sent whole to a page that connected late."""
    self.curves.rebuild()
    self.trace_chart.rebuild()
    self.info_chart.rebuild()

  def show_env(self, env: int, traces: Optional[EnvTraces]) -> None:
    """The selected env's readout and chart."""
    if traces is None:
      set_content(self.env_info, f"**Env {env}**")
      return
    latest = traces.latest(env)
    parts = [f"**Env {env}**"]
    if "reward" in latest:
      parts.append(f"reward {latest['reward']:+.3f}")
    ret = traces.last_return[env]
    if ret == ret:  # not NaN
      parts.append(f"last return {ret:,.1f}")
    parts.append(f"resets {int(traces.resets[env])}")
    set_content(self.env_info, " · ".join(parts))
    labels, data = traces.series(env)
    self.trace_chart.show(labels, data)
    labels, data = traces.info_series(env)
    if labels:
      if not self.info_folder.visible:
        self.info_folder.visible = True
      values = traces.latest_info(env)
      set_content(
        self.info_values,
        " · ".join(f"{literal(k)} {v:+.3g}" for k, v in values.items()),
      )
      self.info_chart.show(labels, data)
