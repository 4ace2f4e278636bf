"""How long the main demo takes to start training, with and without JAX's
persistent compilation cache.

Each round runs ``python -m braxviewer train`` (the demo ``make demo`` runs)
three times in fresh processes, one after the other:
  off    BRAXVIEWER_COMPILE_CACHE=0
  fill   a new, empty cache directory (the first run of a program)
  load   the same directory again (the second run)
and reports, from the moment each process was started: the first training
step back (the trainer's phase turns from ``compiling`` to ``training``),
the end of training, and how many lines the process wrote to stderr.

  python bench/start_time.py                          # inverted_pendulum
  python bench/start_time.py --env ant --rounds 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

VARIANTS = ("off", "fill", "load")


def _child(out_path: str, argv: list) -> None:
  """Run the demo with its viewer's phases timed (wall clock, epoch s)."""
  from braxviewer.app import train as train_demo
  from braxviewer.web import viewer as web_viewer
  from braxviewer.WebViewerBatched import WebViewerBatched

  times = []

  class TimedViewer(WebViewerBatched):
    def on_phase(self, phase: str) -> None:
      times.append((phase, time.time()))
      super().on_phase(phase)

  web_viewer.WebViewerBatched = TimedViewer  # what main() imports, creates
  code = train_demo.main(argv)
  with open(out_path, "w") as f:
    json.dump({"code": code, "phases": times}, f)


def _run(args, variant: str, cache_dir: str) -> dict:
  env = dict(os.environ)
  env["BRAXVIEWER_COMPILE_CACHE"] = "0" if variant == "off" else cache_dir
  with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
    out_path = f.name
  demo_args = [
    "--env",
    args.env,
    "--timesteps",
    str(args.timesteps),
    "--port",
    "0",
    "--no-progress",
    "--evals",
    "2",
  ]
  started = time.time()
  proc = subprocess.run(
    [sys.executable, __file__, "--child", out_path, *demo_args],
    env=env,
    capture_output=True,
    text=True,
  )
  ended = time.time()
  if proc.returncode != 0:
    raise SystemExit(f"{variant} run failed:\n{proc.stderr[-3000:]}")
  with open(out_path) as f:
    result = json.load(f)
  os.unlink(out_path)
  first_training = next(t for p, t in result["phases"] if p == "training")
  done = next(t for p, t in result["phases"] if p == "done")
  return {
    "variant": variant,
    "first_step_s": first_training - started,
    "trained_s": done - started,
    "process_s": ended - started,
    "stderr_lines": len(proc.stderr.splitlines()),
  }


def main() -> None:
  if len(sys.argv) > 2 and sys.argv[1] == "--child":
    _child(sys.argv[2], sys.argv[3:])
    return
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--env", default="inverted_pendulum")
  parser.add_argument("--timesteps", type=int, default=20_000)
  parser.add_argument("--rounds", type=int, default=2)
  args = parser.parse_args()

  print(f"# {platform.machine()}, {os.cpu_count()} CPUs; env {args.env}")
  rows = []
  for round_index in range(args.rounds):
    with tempfile.TemporaryDirectory(prefix="bv-start-cache-") as cache_dir:
      for variant in VARIANTS:
        row = _run(args, variant, cache_dir)
        row["round"] = round_index
        rows.append(row)
        print(json.dumps(row), flush=True)

  print(
    "\n| variant | first training step s | training done s | process s "
    "| stderr lines |\n|---|---:|---:|---:|---:|"
  )
  for variant in VARIANTS:
    mine = [r for r in rows if r["variant"] == variant]

    def median(key, mine=mine):
      return statistics.median(r[key] for r in mine)

    print(
      f"| {variant} | {median('first_step_s'):.1f} "
      f"| {median('trained_s'):.1f} | {median('process_s'):.1f} "
      f"| {median('stderr_lines'):.0f} |"
    )


if __name__ == "__main__":
  main()
