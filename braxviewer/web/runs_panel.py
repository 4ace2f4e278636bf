"""The viewer server's run controls: which run the page shows, which process
and device of a multi-host run streams, forgetting an ended run.

Only a viewer server (``python -m braxviewer serve``) has them; they sit at
the top of the Live tab. Pure widgets: what a choice does is the server's
(``on_show``, ``on_source``, ``on_forget``). No JAX.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence, Tuple, cast

import viser

from braxviewer.core import run_state
from braxviewer.web.widgets import (
  Guard,
  literal,
  set_attr,
  set_content,
  set_value,
)

NO_RUN = "(no run yet)"


@dataclasses.dataclass(frozen=True)
class RunRow:
  """What the panel says of one run."""

  name: str
  state: str  # one of braxviewer.core.run_state.STATES
  processes: int = 1  # processes of its job (multi-host: > 1)
  connected: Tuple[int, ...] = ()  # processes connected now
  source: Tuple[int, int] = (0, 0)  # (process, device) streaming
  where: str = ""  # host and pid of process 0
  env_steps: int = 0


class RunsPanel:
  """The run dropdown, its facts, the streaming process/device, *Forget*.

  Args:
    gui: the page's GUI API (widgets go where the caller's ``with`` puts
      them).
    guard: checks what pages send.
    on_show: ``on_show(name)``: show that run.
    on_source: ``on_source(process, device)`` for the shown run.
    on_forget: ``on_forget(name)``: drop an ended run.
  """

  def __init__(
    self,
    gui: viser.GuiApi,
    guard: Guard,
    *,
    on_show: Callable[[str], None],
    on_source: Callable[[int, int], None],
    on_forget: Callable[[str], None],
  ):
    self.run: viser.GuiDropdownHandle[str] = gui.add_dropdown(
      "Run",
      cast(Tuple[str, ...], (NO_RUN,)),
      initial_value=NO_RUN,
      hint="The training run shown; every run's curves are in Training.",
      order=-20,
    )
    self.facts = gui.add_markdown("_No training run connected yet._", order=-19)
    self.process: viser.GuiDropdownHandle[str] = gui.add_dropdown(
      "Process",
      cast(Tuple[str, ...], ("0",)),
      initial_value="0",
      hint="The process of a multi-host run that streams (jax.distributed).",
      visible=False,
      order=-18,
    )
    self.device = gui.add_number(
      "Device",
      0,
      min=0,
      max=63,
      step=1,
      hint="The local device of that process whose envs are streamed.",
      visible=False,
      order=-17,
    )
    self.forget = gui.add_button(
      "Forget run",
      hint="Take an ended run off this page (its recording stays).",
      visible=False,
      order=-16,
    )
    self.run.on_update(
      guard.on_update(
        "run",
        lambda: self.run.value != NO_RUN and on_show(self.run.value),
        self.run,
      )
    )

    def source() -> None:
      on_source(int(self.process.value), int(self.device.value))

    self.process.on_update(guard.on_update("process", source, self.process))
    self.device.on_update(guard.on_update("device", source, self.device))
    self.forget.on_click(
      guard.on_event("forget", lambda event: on_forget(self.run.value))
    )

  def show(self, rows: Sequence[RunRow], shown: str) -> None:
    """Bring the widgets up to date: the runs, the shown one's facts."""
    names = tuple(row.name for row in rows) or (NO_RUN,)
    if tuple(self.run.options) != names:
      self.run.options = names
    set_value(self.run, shown if shown in names else names[0])
    row = next((r for r in rows if r.name == shown), None)
    if row is None:
      set_content(self.facts, "_No training run connected yet._")
      for widget in (self.process, self.device, self.forget):
        set_attr(widget, "visible", False)
      return
    set_content(self.facts, _facts(row, len(rows)))
    multi = row.processes > 1
    options = tuple(str(p) for p in range(max(row.processes, 1)))
    if tuple(self.process.options) != options:
      self.process.options = options
    set_value(self.process, str(row.source[0]))
    set_value(self.device, int(row.source[1]))
    set_attr(self.process, "visible", multi)
    set_attr(self.device, "visible", True)
    set_attr(self.forget, "visible", row.state in _GONE)


_GONE = (run_state.FINISHED, run_state.ENDED, run_state.LOST)
_KEPT = "its timeline stays here until forgotten"


def _facts(row: RunRow, count: int) -> str:
  state = {
    run_state.WAITING: "waiting: connected, not streaming yet",
    run_state.FINISHED: f"finished: {_KEPT}",
    run_state.ENDED: f"ended before its last step: {_KEPT}",
    run_state.LOST: f"lost: its connection dropped (a run that still"
    f" trains reconnects); {_KEPT}",
  }.get(row.state, row.state)
  parts = [f"**{literal(row.name)}**: {state}"]
  if row.where:
    parts.append(literal(row.where))
  if row.processes > 1:
    parts.append(
      f"{len(row.connected)} of {row.processes} processes connected;"
      f" streaming from process {row.source[0]}, device {row.source[1]}"
    )
  if row.env_steps:
    parts.append(f"{row.env_steps:,} env steps")
  if count > 1:
    parts.append(f"{count} runs on this server")
  return " · ".join(parts)
