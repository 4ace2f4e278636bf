"""Command-line plumbing shared by the demos and ``python -m braxviewer``.

Flags every demo takes, their validation (one clear line and exit code 2
before anything compiles), CPU-sized PPO settings, and a training session
that stops training and the server cleanly on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
import time
from typing import (
  Any,
  Callable,
  Iterator,
  Mapping,
  NoReturn,
  Optional,
  Sequence,
)

from braxviewer.app.quiet import CollapseRepeats
from braxviewer.core import console
from braxviewer.core.interrupts import InterruptWatch, leave_now
from braxviewer.scene.layout import LAYOUTS
from braxviewer.train import interrupt

MODES = ("off", "live", "sync")
# Seconds to wait after Ctrl-C for training to return before exiting anyway
# (a device call or an XLA compile cannot be interrupted from Python).
INTERRUPT_GRACE_S = 3.0


class HelpFormatter(argparse.HelpFormatter):
  """``--help`` with each flag's default, where it has one worth saying
  (not None, not a switch's False) and its text does not say it already."""

  def _get_help_string(self, action: argparse.Action) -> str:
    text = action.help or ""
    default = action.default
    if (
      "default" in text
      or default is None
      or default is False
      or default is argparse.SUPPRESS
      or action.option_strings == []
    ):
      return text
    return text + " (default: %(default)s)"


class UsageError(Exception):
  """Bad command-line input; printed as one line, exit code 2."""


def page_options(args: argparse.Namespace) -> dict:
  """Where and how a command's page is served: its ``--host``, ``--port``
  and ``--layout``, as a viewer's keyword arguments."""
  return dict(host=args.host, port=args.port, layout=args.layout)


def command_parser(command: str, description: str) -> argparse.ArgumentParser:
  """The parser of ``braxviewer COMMAND``, with each flag's default in
  ``--help``."""
  return argparse.ArgumentParser(
    prog=f"braxviewer {command}",
    description=description,
    formatter_class=HelpFormatter,
  )


def demo_parser(
  doc: Optional[str],
  *,
  num_envs: int,
  view_envs: int,
  timesteps: int,
  port: int = 8000,
  timesteps_help: str = "env steps to train for",
) -> argparse.ArgumentParser:
  """The flags every demo takes, with that demo's defaults."""
  p = argparse.ArgumentParser(
    description=(doc or "").strip().splitlines()[0] if doc else None,
    formatter_class=HelpFormatter,
  )
  p.add_argument(
    "--num-envs", type=int, default=num_envs, help="parallel training envs"
  )
  p.add_argument(
    "--view-envs",
    type=int,
    default=view_envs,
    help="training envs shown in the page (the first N)",
  )
  p.add_argument(
    "--timesteps", type=int, default=timesteps, help=timesteps_help
  )
  p.add_argument(
    "--host",
    default="127.0.0.1",
    help="interface to serve the page on (0.0.0.0: the network, with a token)",
  )
  p.add_argument("--port", type=int, default=port, help="port of the page")
  p.add_argument(
    "--mode",
    choices=MODES,
    default="live",
    help="streaming mode at start (switchable in the page)",
  )
  p.add_argument(
    "--layout",
    choices=LAYOUTS,
    default="auto",
    help="grid: each env in a cell; overlay: all envs on one shared world"
    " (terrain); auto: overlay for mobile robots on terrain",
  )
  p.add_argument("--seed", type=int, default=0, help="random seed")
  p.add_argument(
    "--evals",
    type=int,
    default=None,
    help="number of evals (points on the reward curve; default: 10)",
  )
  p.add_argument(
    "--no-progress", action="store_true", help="no terminal progress bar"
  )
  p.add_argument(
    "--verbose",
    action="store_true",
    help="show every line libraries print: their banners, and repeats"
    " (collapsed otherwise; BRAXVIEWER_VERBOSE=1 does the same)",
  )
  p.add_argument(
    "--keep-open",
    action="store_true",
    help="keep serving the page after training, until Ctrl-C",
  )
  return p


def check_demo_args(args: argparse.Namespace) -> None:
  """Raise :class:`UsageError` for values no training could use."""
  for flag in ("num_envs", "view_envs", "timesteps"):
    value = getattr(args, flag)
    if value < 1:
      raise UsageError(
        f"--{flag.replace('_', '-')} must be at least 1, got {value}."
      )
  if args.view_envs > args.num_envs:
    raise UsageError(
      f"--view-envs ({args.view_envs}) cannot exceed --num-envs"
      f" ({args.num_envs}): only training envs can be shown."
    )
  if not 0 <= args.port <= 65535:
    raise UsageError(f"--port must be in 0..65535, got {args.port}.")
  if args.evals is not None and args.evals < 1:
    raise UsageError(f"--evals must be at least 1, got {args.evals}.")


def parse_demo_args(
  parser: argparse.ArgumentParser,
  argv: Optional[Sequence[str]] = None,
  prepare: Optional[Callable[[Any], None]] = None,
):
  """Parse and validate; on bad input print one line and exit with code 2.

  ``prepare(args)`` may fill in defaults that depend on other flags and
  raise :class:`UsageError`; it runs before the common checks.
  """
  args = parser.parse_args(argv)
  if getattr(args, "verbose", False) or console.is_verbose():
    args.verbose = True
    console.verbose(True)  # third-party banners too
  try:
    if prepare is not None:
      prepare(args)
    check_demo_args(args)
  except UsageError as err:
    parser.exit(2, f"{parser.prog}: error: {err}\n")
  return args


def ppo_config(
  args: argparse.Namespace,
  *,
  episode_length: int,
  num_evals: int = 10,
  **overrides: Any,
) -> dict:
  """PPO settings that learn small tasks in minutes on a 2-core CPU."""
  num_envs = args.num_envs
  cfg = dict(
    num_timesteps=args.timesteps,
    num_evals=args.evals or num_evals,
    episode_length=episode_length,
    num_envs=num_envs,
    batch_size=num_envs,
    num_minibatches=4,
    unroll_length=20,
    num_updates_per_batch=4,
    learning_rate=3e-4,
    entropy_cost=1e-2,
    discounting=0.97,
    normalize_observations=True,
    num_eval_envs=min(64, num_envs),
    seed=args.seed,
    progress_bar=False if args.no_progress else None,
  )
  cfg.update(overrides)
  return cfg


class TrainingSession:
  """Runs one training with a viewer; Ctrl-C stops both within seconds."""

  def __init__(self, viewer: Any, what: str = "training"):
    self.viewer = viewer
    self.what = what  # what Ctrl-C stops: "training", "the server", ...
    self.exit_code = 0
    self.result = None
    self._interrupted = threading.Event()
    self._done = threading.Event()
    self._trained = threading.Event()  # training over (the page may stay up)

  def train(self, train_fn: Callable[..., Any], **kwargs: Any):
    """``train_fn(**kwargs, viewer=viewer)``, reporting the eval reward."""
    user_progress = kwargs.pop("progress_fn", None)

    def progress(step: int, metrics: dict) -> None:
      if user_progress is not None:
        user_progress(step, metrics)
      reward = metrics.get("eval/episode_reward")
      if reward is not None:
        print(
          f"\rstep {step:>10,}  eval reward {float(reward):9.2f}" + " " * 30,
          file=sys.stderr,
          flush=True,
        )

    t0 = time.time()
    self.result = train_fn(viewer=self.viewer, progress_fn=progress, **kwargs)
    self._trained.set()
    summary = f"braxviewer: training done in {time.time() - t0:.0f} s"
    stats: Optional[Callable[[], Mapping[str, Any]]] = getattr(
      self.viewer, "stats", None
    )
    if callable(stats):
      with contextlib.suppress(Exception):
        counts = stats()
        summary += (
          f"; {counts['chunks_received']} chunks streamed,"
          f" {counts['frames_shown']} frames shown"
        )
    print(summary + ".", file=sys.stderr, flush=True)
    return self.result

  def keep_open(self, say: bool = True) -> None:
    """Serve the page until Ctrl-C or its *Close the viewer* button (after
    training, to look around), then close it; ``say``: print where the
    page is and how to quit (False: the command said so already)."""
    wait = getattr(self.viewer, "wait", None)
    if callable(wait):
      wait(say=say)
      if self._interrupted.is_set():  # Ctrl-C ended it (not the page)
        self.exit_code = 130
        print("braxviewer: stopped.", file=sys.stderr, flush=True)
      return
    print(
      "braxviewer: the page stays up; Ctrl-C to quit.",
      file=sys.stderr,
      flush=True,
    )
    while True:
      time.sleep(0.5)

  def on_ctrl_c(self) -> None:
    """Each Ctrl-C, at once (the interrupt watcher's thread), even while
    the main thread waits in a compile or a device call."""
    if self._interrupted.is_set():
      os._exit(130)  # a second Ctrl-C: leave now
    self._interrupted.set()
    if not self._trained.is_set() and not interrupt.holding():
      # (a training that holds Ctrl-C says itself what happens)
      print(
        f"\nbraxviewer: Ctrl-C: stopping {self.what}...",
        file=sys.stderr,
        flush=True,
      )
    threading.Thread(
      target=self._leave_if_stuck, name="braxviewer-leave", daemon=True
    ).start()

  def _leave_if_stuck(self) -> None:
    """Leave anyway when the main thread does not return in time (a
    compile, a device call)."""
    if not self._done.wait(INTERRUPT_GRACE_S):
      with contextlib.suppress(Exception):
        self.viewer.close()
      print("braxviewer: stopped.", file=sys.stderr, flush=True)
      os._exit(130)


def exit_with(code: int) -> NoReturn:
  """Exit with ``code``; after Ctrl-C (130) promptly, skipping the
  interpreter's slow final collection of JAX's objects (exit handlers
  still run)."""
  if code == 130:
    leave_now(130)
  sys.exit(code)


@contextlib.contextmanager
def training_session(
  viewer: Any, verbose: bool = True, what: str = "training"
) -> Iterator[TrainingSession]:
  """Context for a demo's training: clean exit on Ctrl-C and on errors that
  users can act on (a busy port), the viewer closed in every case. Unless
  ``verbose``, library lines that repeat every step are collapsed (see
  :mod:`braxviewer.app.quiet`)."""
  session = TrainingSession(viewer, what)
  quiet = None if verbose else CollapseRepeats()
  watch = InterruptWatch(session.on_ctrl_c)
  watch.start()  # in the main thread, when the program leaves Ctrl-C to us
  previous_hook = sys.unraisablehook

  def unraisable(report: Any) -> None:
    # A Ctrl-C that lands in a garbage-collector callback (JAX registers
    # one) cannot be raised there; Python would print its traceback and
    # drop it. The watchdog stops the run in any case: say nothing.
    if not isinstance(report.exc_value, KeyboardInterrupt):
      previous_hook(report)

  sys.unraisablehook = unraisable
  try:
    if quiet is not None:
      quiet.__enter__()
    yield session
  except KeyboardInterrupt:
    session.exit_code = 130
    print("braxviewer: stopped.", file=sys.stderr, flush=True)
  except OSError as err:
    if "port" not in str(err):
      raise
    session.exit_code = 2
    print(str(err), file=sys.stderr, flush=True)
  finally:
    sys.unraisablehook = previous_hook
    session._done.set()
    with contextlib.suppress(Exception):
      viewer.close()
    if quiet is not None:
      quiet.__exit__(None, None, None)
    watch.stop()
