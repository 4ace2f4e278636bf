"""Replay a recording in the live viewer's page.

    python -m braxviewer replay runs/my_run          # http://127.0.0.1:8000

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

import argparse
import os
import sys
import time
from typing import Any, Callable, Optional, Sequence

from braxviewer import cli
from braxviewer.export import export_video
from braxviewer.layout import LAYOUTS, check_layout
from braxviewer.model_lookup import resolve_model
from braxviewer.record import format as fmt
from braxviewer.record.offscreen import configure_gl
from braxviewer.record.reader import Recording
from braxviewer.scene import BatchedScene
from braxviewer.web.host import PageHost
from braxviewer.web.pacing import Player
from braxviewer.web.server import Token


class ReplayViewer(PageHost):
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
    super().__init__(
      host,
      port,
      port_fallback=port_fallback,
      title=title or f"replay: {os.path.basename(rec.path)}",
      player=player,
      token=token,
    )
    self.playback.set_speed(speed)
    self._layout = layout

  def run(self) -> "ReplayViewer":
    """Serve the page and start playing."""
    if self.page is not None:
      return self
    player = self.playback.player
    page = self._serve(
      stream=None, mode="off", num_envs=self.num_envs, recorded=player.timeline
    )
    self._show_envs(
      BatchedScene(self._model, self.num_envs, layout=self._layout)
    )
    for steps, metrics in self.recording.progress():
      page.add_progress(steps, metrics)
    page.add_export_button(
      self._export_clicked,
      "Export MP4",
      "Selected env, current chunk, follow camera.",
    )
    player.ready = True
    return self

  # -- export ----------------------------------------------------------------

  def _export_clicked(self, client: Any) -> None:
    """The page's *Export MP4*: the selected env, the chunk on screen."""
    if self.page is None:
      return
    cursor = max(self.playback.player.cursor, 0)  # replay: position == index
    env = self.page.selected_env
    steps = int(self.playback.timeline.env_steps[cursor])
    source = self.playback.player.source
    path = self.recording.path

    def render(out: str, on_frame: Callable[[int, int], None]) -> None:
      # a fresh reader: the export thread must not share memory maps
      export_video(
        path,
        out,
        env=env,
        steps=(steps, steps),
        source=source,
        on_frame=on_frame,
      )

    self._send_video(client, f"env{env}_step{steps}.mp4", render)


# -- command line ----------------------------------------------------------------


def main(argv: Optional[Sequence[str]] = None) -> int:
  """``python -m braxviewer replay RECORDING``."""
  p = argparse.ArgumentParser(
    prog="braxviewer replay",
    description="Serve a recording in the viewer's page: timeline over"
    " training, play/pause, speed, loop, envs, reward plots, MP4 export.",
    formatter_class=cli.HelpFormatter,
  )
  p.add_argument("recording", help="recording directory (record_dir=)")
  p.add_argument("--host", default="127.0.0.1")
  p.add_argument("--port", type=int, default=8000)
  p.add_argument("--source", choices=("train", "eval"), default="train")
  p.add_argument(
    "--speed", type=float, default=1.0, help="playback speed, 0.1 to 4"
  )
  p.add_argument(
    "--model",
    default=None,
    help="MJCF file to draw instead of the recorded model",
  )
  p.add_argument(
    "--layout",
    choices=LAYOUTS,
    default="auto",
    help="envs on a grid, overlaid on one world, or auto (overlay on terrain)",
  )
  p.add_argument(
    "--exit-after", type=float, default=None, help=argparse.SUPPRESS
  )  # for tests: serve this long, exit
  args = p.parse_args(argv)
  if not 0.1 <= args.speed <= 4.0:
    print(
      f"{p.prog}: error: --speed must be within 0.1..4, got {args.speed}.",
      file=sys.stderr,
    )
    return 2
  configure_gl()
  try:
    started = time.perf_counter()
    rec = Recording(args.recording)
    rec.verify()  # what was lost is said up front, and never played
    opened_s = time.perf_counter() - started
    if args.model is not None and not os.path.isfile(args.model):
      raise fmt.RecordingError(f"no such MJCF file: {args.model}")
    viewer = ReplayViewer(
      rec,
      host=args.host,
      port=args.port,
      model=args.model,
      source=args.source,
      speed=args.speed,
      layout=args.layout,
    )
  except (fmt.RecordingError, ValueError, TypeError) as err:
    print(f"{p.prog}: error: {' '.join(str(err).split())}", file=sys.stderr)
    return 2
  summary = rec.summary()
  with cli.training_session(viewer) as session:
    viewer.run()
    if rec.report():
      print(
        f"braxviewer: the recording is damaged: {rec.report()}.",
        file=sys.stderr,
        flush=True,
      )
    print(
      f"braxviewer: replaying {args.recording}: {summary['train_chunks']}"
      f" training chunks, {summary['eval_chunks']} eval chunks (opened and"
      f" checked in {opened_s:.2f} s); Ctrl-C to quit.",
      flush=True,
    )
    if args.exit_after is not None:
      time.sleep(args.exit_after)
    else:
      session.keep_open()
  return session.exit_code


if __name__ == "__main__":
  sys.exit(main())
