"""Replay a recording in the live viewer's page (``braxviewer replay``).

:class:`ReplayViewer` is the web viewer (same page, scene, env selection,
reward charts and training curves) fed from a recording instead of a
trainer: its player is the live viewer's
:class:`~braxviewer.web.pacing.Player`, reviewing the recording's timeline
(read lazily, one chunk at a time) where the live page reviews the last
chunks it received. The timeline controls are the live page's too (over
training progress; previous/next chunk with buttons and the up/down keys,
as in rscope; go to an env step; play/pause; speed 0.1x-4x; loop and
repeat), in a "Replay" folder, plus MP4 export of what is on screen. No JAX.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Optional

from braxviewer.record import format as fmt
from braxviewer.record.export import export_video
from braxviewer.record.reader import Recording
from braxviewer.scene.batched import BatchedScene
from braxviewer.scene.layout import check_layout
from braxviewer.scene.lookup import resolve_model
from braxviewer.web.host import PageHost, ShowsPage
from braxviewer.web.pacing import Player
from braxviewer.web.server import Token


class ReplayViewer(ShowsPage):
  """The web viewer's page, playing a recording.

  Args:
    recording: a recording directory or an open :class:`Recording`.
    host, port, port_fallback: where to serve (as the live viewer).
    model: MJCF path or MjModel to draw instead of the recorded model.
    source: ``"train"`` or ``"eval"`` chunks first.
    speed: initial playback speed (0.1 to 4).
    loop: start over at the end.
    token: who may open the page (as the live viewer's).
    title: the page's panel title (default: the recording's name).
    layout: ``"grid"``, ``"overlay"`` or ``"auto"`` (as the live viewer's).

  Its controls are the live viewer's: :attr:`page` (envs, camera) and
  :attr:`playback` (timeline, pause, speed, source).

  Raises:
    RecordingError: the recording cannot be read or has no model.
  """

  def __init__(
    self,
    recording: Any,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    port_fallback: bool = False,
    model: Any = None,
    source: str = "train",
    speed: float = 1.0,
    loop: bool = True,
    title: Optional[str] = None,
    token: Token = "auto",
    layout: str = "auto",
  ):
    check_layout(layout)
    rec = (
      recording if isinstance(recording, Recording) else Recording(recording)
    )
    self.recording = rec
    self._model = resolve_model(model if model is not None else rec.model())
    train = rec.chunks("train")
    chunks = train if len(train) else rec.chunks("eval")
    if not len(chunks):
      damage = (
        f" ({rec.unreadable_bytes} bytes of its segments are"
        " unreadable: corrupt or cut short)"
        if rec.unreadable_bytes
        else ""
      )
      raise fmt.RecordingError(
        f"the recording at {rec.path} holds no readable chunks{damage}."
      )
    if source == "train" and not len(train):
      source = "eval"
    info = rec.stream_info
    self.num_envs = info.num_envs if info else int(chunks.num_envs.max())
    player = Player(rec, live=False, loop=loop)
    player.ready = False  # until run() has built the scene
    player.set_source(source)
    self.host = PageHost(
      host,
      port,
      port_fallback=port_fallback,
      title=title or f"replay: {os.path.basename(rec.path)}",
      player=player,
      token=token,
    )
    self.playback.set_speed(speed)
    self._layout = layout

  # -- the parts (page, playback, url, port, stats: ShowsPage) -------------------

  @property
  def layout(self) -> str:
    """``"grid"`` or ``"overlay"`` once drawn, the option given before."""
    return self.host.drawn_layout(self._layout)

  def close(self) -> None:
    """Stop serving."""
    self.host.close()

  def run(self) -> "ReplayViewer":
    """Serve the page and start playing."""
    if self.page is not None:
      return self
    player = self.playback.player
    page = self.host.serve(
      stream=None, mode="off", num_envs=self.num_envs, recorded=player.timeline
    )
    self.host.show_envs(
      BatchedScene(self._model, self.num_envs, layout=self._layout)
    )
    for steps, metrics in self.recording.progress():
      page.add_progress(steps, metrics)
    page.add_export_button(
      self.export_clicked,
      "Export MP4",
      "Selected env, current chunk, follow camera.",
    )
    player.ready = True
    return self

  # -- export ----------------------------------------------------------------

  def export_clicked(self, client: Any) -> None:
    """The page's *Export MP4*: the selected env, the chunk on screen."""
    if self.page is None:
      return
    cursor = max(self.playback.player.cursor, 0)  # replay: position == index
    env = self.page.selected_env
    steps = int(self.playback.timeline.env_steps[cursor])
    source = self.playback.player.source
    path = self.recording.path

    def render(out: str, on_frame: Callable, stopped: Callable) -> None:
      # a fresh reader: the export thread must not share memory maps
      export_video(
        path,
        out,
        env=env,
        steps=(steps, steps),
        source=source,
        on_frame=on_frame,
        stopped=stopped,
      )

    self.host.send_video(client, f"env{env}_step{steps}.mp4", render)
