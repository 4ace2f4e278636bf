"""The page: its widgets, the drawn envs, the camera, the charts, the status.

:class:`Page` owns everything a browser shows: the control panel
(:mod:`panels`), the envs' geometry (:mod:`render`), the camera presets
(:mod:`camera`), the selected env's traces and the training curves
(:mod:`plots`). Every widget read and write goes through it. It draws what
it is given (body poses of a frame) and hands the user actions it does not
handle itself (mode, source, timeline) to the controls it was built with.
No pacing, no trainer, no JAX.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Mapping, Optional, Tuple

import mujoco
import numpy as np
import viser

from braxviewer.core.timeline import ChunkSequence
from braxviewer.web import camera, commands
from braxviewer.web.errors import WarnOnce
from braxviewer.web.meters import Average
from braxviewer.web.pacing import PlaybackState
from braxviewer.web.panels import Panels, Status, StreamControls
from braxviewer.web.render import SceneView, setup_lighting
from braxviewer.web.runs_panel import RunsPanel
from braxviewer.web.timeline_panel import TimelineControls
from braxviewer.web.traces import EnvTraces
from braxviewer.web.widgets import Guard

# Seconds after a page connects before its charts are sent anew (it first
# takes in the replay of the scene; see ProgressCurves.rebuild).
_CHART_REBUILD_DELAY = 1.5


class Page:
  """What every open browser page shows, and the display controls.

  Args:
    server: the viser server.
    stream: receives the page's mode changes (None: no trainer, e.g. replay).
    timeline: receives the timeline controls and the source choice.
    mode: the initially wanted streaming mode.
    num_envs: envs expected on display (until :meth:`build`).
    title: the panel's title.
    recorded: replay: the recording's timeline (see :class:`Panels`).
    warn: ``warn(key, message)`` once per key (bad values from a page).
    on_page_gone: called with a page's client id when it disconnects.
    on_page_open: called when a page connects (or reloads).
  """

  def __init__(
    self,
    server: viser.ViserServer,
    *,
    stream: Optional[StreamControls],
    timeline: TimelineControls,
    mode: str = "live",
    num_envs: int = 1,
    title: str = "braxviewer",
    recorded: Optional[ChunkSequence] = None,
    warn: Optional[Callable[[str, str], None]] = None,
    on_page_gone: Callable[[int], None] = lambda client_id: None,
    on_page_open: Callable[[], None] = lambda: None,
  ):
    self._on_page_open = on_page_open
    self._server = server
    self._guard = Guard(warn or WarnOnce())
    self._lock = threading.RLock()  # scene, traces, selection
    setup_lighting(server)
    self.panels = Panels(
      server,
      stream=stream,
      display=self,
      timeline=timeline,
      num_envs=num_envs,
      mode=mode,
      title=title,
      recorded=recorded,
      guard=self._guard,
    )
    self._view: Optional[SceneView] = None
    self._arrows: Optional[commands.CommandArrows] = None
    self._traces: Optional[EnvTraces] = None
    self._last_pose: Optional[Tuple[np.ndarray, np.ndarray]] = None
    self._selected = 0
    self._follow = False
    self._only = False
    self._shadows = False
    self._drawn = {"site": True, "tendon": True}  # the Sites/Tendons boxes
    self._charts_due = 0.0
    # overlay: the rest pose does not say where the envs are; the first
    # frame shown does (the overview is aimed again then, once)
    self._aim_at_first_frame = False
    self.update_seconds = Average()  # server-side cost of one drawn frame
    self._shown_at = 0.0  # perf_counter of the last frame shown
    server.on_client_connect(self._on_client)
    server.on_client_disconnect(lambda client: on_page_gone(client.client_id))

  def acting_page(self) -> Optional[int]:
    """The page whose control runs now in this thread (None: Python)."""
    return self._guard.client()

  # -- the drawn envs ----------------------------------------------------------

  def build(
    self,
    model: mujoco.MjModel,
    offsets: np.ndarray,
    xpos: np.ndarray,
    xquat: np.ndarray,
    layout: str = "grid",
  ) -> None:
    """(Re)build the drawn envs: one copy of ``model`` per row of
    ``offsets``, first shown at body poses ``xpos``/``xquat`` (N, nbody, .);
    ``layout``: ``"grid"`` or ``"overlay"`` (the static world drawn once)."""
    with self._lock:
      if self._arrows is not None:
        self._arrows.remove()
        self._arrows = None
      if self._view is not None:
        self._view.remove()
      view = self._view = SceneView(
        self._server, model, offsets, self.select_env, layout
      )
      for category, visible in self._drawn.items():
        view.set_visible(category, visible)
      n = view.num_envs
      self._traces = EnvTraces(n)
      self._selected = min(self._selected, n - 1)
      self._last_pose = (np.asarray(xpos), np.asarray(xquat))
      view.show(*self._last_pose)
      if self._only:
        view.show_only(self._selected)
      view.select(self._selected)
      self.panels.set_num_envs(n)
      self.panels.show_layout(view.layout)
      self.panels.show_env(self._selected, self._traces)
      self._aim("overview")
      self._aim_at_first_frame = view.layout == "overlay"

  @property
  def view(self) -> Optional[SceneView]:
    """The drawn envs (None until :meth:`build`)."""
    return self._view

  @property
  def num_envs(self) -> int:
    """Envs drawn (0 before :meth:`build`)."""
    return self._view.num_envs if self._view is not None else 0

  @property
  def selected_env(self) -> int:
    return self._selected

  @property
  def following(self) -> bool:
    return self._follow

  @property
  def triangles(self) -> int:
    """Triangles the page is asked to draw for the envs now."""
    return self._view.triangles if self._view is not None else 0

  def show(
    self,
    xpos: np.ndarray,
    xquat: np.ndarray,
    valid: np.ndarray,
    done: np.ndarray,
    command: Optional[np.ndarray] = None,
  ) -> None:
    """Pose every env: ``xpos (N, nbody, 3)``, ``xquat (N, nbody, 4)``;
    envs not ``valid`` keep their last pose; ``done`` flags resets;
    ``command (N, 2|3)``: a velocity command per env, drawn as arrows."""
    with self._lock:
      view = self._view
      if view is None:
        return
      started = time.perf_counter()
      last = self._last_pose
      valid = np.asarray(valid, dtype=bool)
      if not valid.all() and last is not None and last[0].shape == xpos.shape:
        xpos = np.where(valid[:, None, None], xpos, last[0])
        xquat = np.where(valid[:, None, None], xquat, last[1])
      self._last_pose = (xpos, xquat)
      self._shown_at = started
      view.show(xpos, xquat, done=np.asarray(done) > 0)
      if command is not None:
        self._show_command(view, xquat, np.asarray(command))
      if self._follow:
        self._center_selected()
      elif self._aim_at_first_frame:
        self._aim("overview")
      self._aim_at_first_frame = False
      self.update_seconds.add(time.perf_counter() - started)

  def trace(self, t: float, reward: np.ndarray, *more: Any) -> None:
    """Add a frame's rewards, resets, reward terms and streamed
    ``state.info`` entries (one row per env) to the envs' traces (the
    selected env's charts): the arguments of :meth:`EnvTraces.push
    <braxviewer.web.traces.EnvTraces.push>`."""
    traces = self._traces
    if traces is not None and traces.num_envs == len(reward):
      traces.push(t, reward, *more)

  # -- display controls (the panel's, and Python's) ----------------------------

  def select_env(self, env: int) -> None:
    """Select ``env`` (clamped to the envs drawn): marker, chart, follow."""
    with self._lock:
      n = max(self.num_envs, 1)
      self._selected = int(np.clip(int(env), 0, n - 1))
      if self._view is not None:
        self._view.select(self._selected)
        if self._only:
          self._redraw()
      self._show_display()
      self.panels.show_env(self._selected, self._traces)
      self._center_selected()

  def step_env(self, delta: int) -> None:
    """The next (+1) or previous (-1) env, wrapping around."""
    self.select_env((self._selected + int(delta)) % max(self.num_envs, 1))

  def set_follow(self, follow: bool, aim: bool = True) -> None:
    """Keep the selected env centred; turning it on frames the env (the
    follow camera), turning it off shows the whole grid again (``aim``:
    False leaves the camera where it is)."""
    with self._lock:
      changed = bool(follow) != self._follow
      self._follow = bool(follow)
      self._show_display()
      self._center_selected()
      if aim and changed:
        self._aim_at_first_frame = False
        self._aim("follow" if follow else "overview")

  def set_show_only(self, only: bool) -> None:
    """Draw the selected env alone."""
    with self._lock:
      self._only = bool(only)
      self._show_display()
      if self._view is not None:
        self._view.show_only(self._selected if only else None)
        self._redraw()

  def set_shadows(self, shadows: bool) -> None:
    """Shadows in the page (off by default: costly without a GPU)."""
    self._shadows = bool(shadows)
    self._server.scene.configure_default_lights(True, self._shadows)
    self._show_display()

  def set_drawn(self, category: str, visible: bool) -> None:
    """Draw or hide the envs' ``"site"`` or ``"tendon"`` parts (no
    rebuild: their meshes are hidden, and no longer posed or sent).

    Raises:
      ValueError: another category.
    """
    if category not in self._drawn:
      raise ValueError(
        f"Unknown category {category!r}; use one of {tuple(self._drawn)}."
      )
    with self._lock:
      self._drawn[category] = bool(visible)
      self.panels.show_drawn(self._drawn["site"], self._drawn["tendon"])
      if self._view is not None:
        self._view.set_visible(category, bool(visible))
        self._redraw()

  def apply_camera(self, preset: str) -> None:
    """Point every open page's camera: top, side, front or follow.

    Raises:
      ValueError: another preset name.
    """
    if preset not in camera.PRESETS:
      raise ValueError(
        f"Unknown camera preset {preset!r}; use one of {camera.PRESETS}."
      )
    with self._lock:
      self._aim_at_first_frame = False
      self.set_follow(preset == "follow", aim=False)
      self._aim(preset)

  # -- what else the page shows --------------------------------------------------

  def show_mode(self, mode: str) -> None:
    """The streaming mode widget (a change made from Python)."""
    self.panels.show_mode(mode)

  def hide_trainer_controls(self) -> None:
    """For a page no trainer feeds (``python -m braxviewer view``)."""
    self.panels.hide_trainer_controls()

  def add_progress(
    self,
    env_steps: int,
    metrics: Mapping[str, Any],
    run: Optional[str] = None,
  ) -> None:
    """A progress report for the training curves (thread-safe, cheap);
    ``run``: whose, when several runs share the charts."""
    self.panels.curves.add(int(env_steps), metrics, run)

  def forget_progress(self, run: str) -> None:
    """Take ``run``'s curves off the charts."""
    self.panels.curves.forget(run)

  def add_runs_panel(
    self,
    on_show: Callable[[str], None],
    on_source: Callable[[int, int], None],
    on_forget: Callable[[str], None],
  ) -> RunsPanel:
    """The viewer server's run controls, at the top of the Live tab."""
    with self.panels.live_tab:
      return RunsPanel(
        self._server.gui,
        self._guard,
        on_show=on_show,
        on_source=on_source,
        on_forget=on_forget,
      )

  def refresh(
    self, status: Status, playback: PlaybackState, note: str = ""
  ) -> None:
    """Bring the status, charts and timeline widgets up to date (called a
    few times a second by the viewer thread)."""
    if self._charts_due and time.monotonic() >= self._charts_due:
      self._charts_due = 0.0
      with self._lock:
        self.panels.rebuild_charts()
        if self._traces is not None:
          self._traces.dirty = True
    self.panels.show_status(status)
    with self._lock:
      view = self._view
      if (
        view is not None
        and time.perf_counter() - self._shown_at > 0.3  # nothing playing
        and view.detail_stale()
      ):
        self._redraw()  # a still scene, a camera that moved: finer or coarser
      traces = self._traces
      if traces is not None and traces.dirty:
        traces.dirty = False
        self.panels.show_env(self._selected, traces)
    self.panels.curves.refresh()
    self.panels.timeline.show(playback, note=note)

  def add_export_button(
    self, on_click: Callable[[Any], None], label: str, hint: str
  ) -> None:
    """A video button in the timeline folder; ``on_click(client)``."""
    self.panels.timeline.add_export_button(on_click, label, hint)

  # -- internals -----------------------------------------------------------------

  def _on_client(self, client: Any) -> None:
    del client
    self._charts_due = time.monotonic() + _CHART_REBUILD_DELAY
    self._on_page_open()

  def _show_display(self) -> None:
    self.panels.show_display(
      self._selected, self._follow, self._only, self._shadows
    )

  @property
  def command_arrows(self) -> Optional[commands.CommandArrows]:
    """The velocity command arrows (None until a command was shown)."""
    return self._arrows

  def _show_command(
    self, view: SceneView, xquat: np.ndarray, command: np.ndarray
  ) -> None:
    if command.shape[:1] != (view.num_envs,) or not (
      commands.is_velocity_command(command)
    ):
      return
    arrows = self._arrows
    if arrows is None:
      arrows = self._arrows = commands.CommandArrows(
        self._server, f"{view.root}/command", view.num_envs, view.extent
      )
    above = view.roots + [0.0, 0.0, 0.75 * view.extent]
    arrows.show(
      above,
      commands.heading(xquat[:, view.tracked_body]),
      command,
      only=self._selected if self._only else None,
    )

  def _redraw(self) -> None:
    if self._view is not None and self._last_pose is not None:
      self._view.show(*self._last_pose)

  def _center_selected(self) -> None:
    view = self._view
    if view is None:
      return
    if self._follow:
      root = view.roots[self._selected]
      view.shift(-np.array([root[0], root[1], 0.0]))
    else:
      view.shift(np.zeros(3))

  def _viewport(self) -> camera.Viewport:
    """The first open page's field of view and shape (defaults if none)."""
    for client in list(self._server.get_clients().values()):
      try:
        cam = client.camera
        return camera.Viewport.of(cam.fov, cam.image_width, cam.image_height)
      except Exception:  # not synced yet, or closed meanwhile
        continue
    return camera.Viewport()

  def _aim(self, preset: str) -> None:
    view = self._view
    if view is None:
      return
    position, look_at, _ = camera.preset(
      preset,
      view.roots + view.offset,
      self._selected,
      view.extent if preset == "follow" else view.cell_extent,
      self._viewport(),
    )
    cam = self._server.initial_camera
    cam.position, cam.look_at = position, look_at
    for client in list(self._server.get_clients().values()):
      try:
        client.camera.position = position  # moves look_at along ...
        client.camera.look_at = look_at  # ... so aim afterwards
      except Exception:  # the page closed meanwhile
        pass
