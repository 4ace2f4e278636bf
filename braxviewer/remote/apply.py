"""What each message a run sends does on the viewer server.

:class:`RunMessages` holds one handler per message class (its dispatch
table: adding a message is one class in :mod:`wire` and one handler here).
Each message is checked first (:mod:`trust`), then applied to its run
(:class:`~braxviewer.remote.runs.Run`: numbering, timeline, recording) and,
for the run the page shows, to the page (a
:class:`~braxviewer.web.viewer.WebViewerBatched`). A refused message raises
:class:`~braxviewer.remote.trust.Refused` and changes nothing. No JAX.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Dict, Optional

from braxviewer.core.protocol import Mode
from braxviewer.remote import trust, wire
from braxviewer.remote.runs import Link, Run
from braxviewer.web.viewer import WebViewerBatched

Handler = Callable[[Run, Link, Any], None]


class RunMessages:
  """Applies the messages of the server's runs.

  Args:
    web: the page.
    shown: the run the page shows now (None: none).
    show_lock: held while the page switches runs.
  """

  def __init__(
    self,
    web: WebViewerBatched,
    shown: Callable[[], Optional[Run]],
    show_lock: threading.RLock,
  ):
    self._web = web
    self._shown = shown
    self._show_lock = show_lock
    self.handlers: Dict[type, Handler] = {
      wire.Chunk: self.chunk,
      wire.Progress: self.progress,
      wire.Model: self.model,
      wire.Start: self.start,
      wire.Phase: self.phase,
      wire.TrainerMode: self.trainer_mode,
      wire.End: self.end,
    }

  def apply(self, run: Run, link: Link, message: wire.Message) -> None:
    """Apply one message of ``run``, checked first.

    Raises:
      trust.Refused: the message was not applied.
    """
    handler = self.handlers.get(type(message))
    if handler is None:
      raise trust.Refused(message.kind, "a run does not send this message.")
    handler(run, link, message)

  # -- one handler per message ------------------------------------------------------

  def chunk(self, run: Run, link: Link, message: wire.Chunk) -> None:
    trust.check_chunk(message.chunk, run.info)
    web = self._web
    chunk = run.number(message.chunk)
    if chunk.source == "train":
      run.env_steps = max(run.env_steps, int(chunk.env_steps))
    if run.recorder is not None:
      run.recorder.on_chunk(chunk)
    shown = run is self._shown()
    if shown and web.ready and web.wanted_mode == Mode.SYNC:
      run.pending = (chunk.source, int(message.chunk.seq))
      try:
        web.on_chunk(chunk)  # waits until shown; the player keeps it
      finally:
        run.pending = None
    else:
      with self._show_lock:  # not while the page switches runs
        if run is self._shown() and web.ready:
          web.on_chunk(chunk)  # the player keeps it in run.store
        else:
          run.store.append(chunk)
    if message.ack:
      link.send(wire.Shown(message.chunk.source, int(message.chunk.seq)))

  def progress(self, run: Run, link: Link, message: wire.Progress) -> None:
    if link.process != min(run.connected(), default=link.process):
      return  # one process's report is the run's
    message = trust.check_progress(message, run.reports)
    if 0 <= message.index < run.reports:
      return  # sent again after a reconnect: kept already
    run.reports = max(run.reports, message.index + 1)
    run.env_steps = max(run.env_steps, int(message.env_steps))
    page = self._web.page
    if page is not None:
      page.add_progress(message.env_steps, message.metrics, run.name)
    if run.recorder is not None:
      run.recorder.on_progress(message.env_steps, message.metrics)
    if run is self._shown():
      self._web.on_progress(message.env_steps, message.metrics)

  def model(self, run: Run, link: Link, message: wire.Model) -> None:
    del link
    files, model = trust.check_model(message)
    run.files, run.model = files, model
    if run.info is not None:
      try:  # the stream so far no longer fits: wait for its new start
        trust.check_start(wire.Start(run.info), model)
      except trust.Refused:
        run.info = None
    if run.recorder is not None:
      run.recorder.init(files)
    if run is self._shown():
      self._web.init(model)

  def start(self, run: Run, link: Link, message: wire.Start) -> None:
    message = trust.check_start(message, run.model)
    link.process = int(message.process)
    run.processes = max(run.processes, int(message.processes))
    if message.again and run.info is not None:
      return  # a reconnect: the same stream goes on
    if run.info is not None and link.process != run.source[0]:
      return  # another process of the job: one stream per run
    run.info, run.ended = message.info, False
    run.reports = 0  # a new stream numbers its reports from 0
    if run.recorder is not None:
      run.recorder.on_stream_start(message.info)
    if run is self._shown():
      self._web.on_stream_start(message.info)

  def phase(self, run: Run, link: Link, message: wire.Phase) -> None:
    del link
    run.phase = trust.check_phase(message).name
    if run is self._shown():
      self._web.on_phase(run.phase)

  def trainer_mode(
    self, run: Run, link: Link, message: wire.TrainerMode
  ) -> None:
    del link
    mode = trust.check_trainer_mode(message)
    run.trainer_mode = mode.value
    if run is self._shown():
      self._web.on_trainer_mode(mode)

  def end(self, run: Run, link: Link, message: wire.End) -> None:
    del message
    if link.process != run.source[0]:
      return
    run.ended = True
    if run.recorder is not None:
      run.recorder.on_stream_end()
    if run is self._shown():
      self._web.on_stream_end()
