"""Screenshots of the viewer page during a run, for docs and READMEs.

    python tools/screenshot.py --env ant --envs 16 --out docs/img

trains ``--env`` with braxviewer's PPO and a :class:`WebViewerBatched`,
opens the page in headless Chromium (Debian's, via Playwright) once
``--evals`` evaluations are done, and saves one PNG per tab. ``--synthetic``
skips training: the envs are stepped by mujoco with random controls (no JAX).
This is tooling: the viewer itself never imports it.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from typing import List, Optional

from braxviewer.testing import chromium


class _Enough(Exception):
  """Raised from progress_fn to end the training once the shots are taken."""


def _parse(argv: Optional[List[str]]) -> argparse.Namespace:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--env", default="ant", help="brax env name")
  p.add_argument(
    "--playground",
    default=None,
    metavar="NAME",
    help="a MuJoCo Playground env instead (e.g. ReacherEasy)",
  )
  p.add_argument(
    "--camera",
    default=None,
    choices=("top", "side", "front", "follow"),
    help="camera preset for the shots",
  )
  p.add_argument("--backend", default="generalized")
  p.add_argument("--envs", type=int, default=16, help="envs on the page")
  p.add_argument("--train-envs", type=int, default=64)
  p.add_argument(
    "--evals",
    type=int,
    default=3,
    help="evaluations to wait for before the shots",
  )
  p.add_argument(
    "--synthetic",
    action="store_true",
    help="no training: mujoco steps the envs (no JAX)",
  )
  p.add_argument("--out", default="docs/img")
  p.add_argument("--prefix", default="web")
  p.add_argument("--chromium", default=chromium.executable())
  p.add_argument("--width", type=int, default=1400)
  p.add_argument("--height", type=int, default=860)
  return p.parse_args(argv)


def _train(args, viewer, evals_done: threading.Event, state: dict) -> None:
  """braxviewer's PPO on a brax env; stops once the shots are taken."""

  from braxviewer.brax.training.agents.ppo import train as ppo

  env = state["env"]
  evals = [0]
  extra = {}
  if args.playground:
    from mujoco_playground import wrapper

    extra["wrap_env_fn"] = wrapper.wrap_for_brax_training

  def progress(step, metrics):
    del step, metrics
    evals[0] += 1
    if evals[0] >= args.evals:
      evals_done.set()
    if state.get("stop"):
      raise _Enough()

  try:
    ppo.train(
      environment=env,
      viewer=viewer,
      progress_fn=progress,
      num_timesteps=2_000_000,
      num_evals=40,
      episode_length=1000,
      num_envs=args.train_envs,
      batch_size=args.train_envs,
      num_minibatches=4,
      unroll_length=10,
      num_updates_per_batch=4,
      num_eval_envs=16,
      learning_rate=3e-4,
      entropy_cost=1e-2,
      discounting=0.97,
      reward_scaling=10,
      normalize_observations=True,
      seed=0,
      **extra,
    )
  except _Enough:
    pass
  except BaseException as err:
    state["error"] = err
  finally:
    evals_done.set()


def _hide_notice(page) -> None:
  """Close the browser's 'software WebGL' notice if it is shown."""
  try:
    page.locator("#webgl-software-rendering button").click(timeout=3000)
  except Exception:
    pass  # not shown (a GPU browser)


def take(args: argparse.Namespace) -> List[str]:
  """Run, shoot, return the PNG paths."""

  from playwright.sync_api import sync_playwright

  from braxviewer import WebViewerBatched

  viewer = WebViewerBatched(num_envs=args.envs, port=0)
  viewer.run()
  done = threading.Event()
  state: dict = {}
  stream = None
  if args.synthetic:
    import mujoco

    from braxviewer.testing.synthetic import PUCK_XML, SyntheticStream

    model = mujoco.MjModel.from_xml_string(PUCK_XML)
    viewer.init(model)
    stream = SyntheticStream(viewer, model).start()
    time.sleep(8.0)
    done.set()
  else:
    if args.playground:
      from mujoco_playground import registry

      state["env"] = registry.load(
        args.playground, config_overrides={"impl": "jax"}
      )
    else:
      from brax import envs

      state["env"] = envs.get_environment(args.env, backend=args.backend)
    viewer.init(state["env"])
    state["thread"] = threading.Thread(
      target=_train, args=(args, viewer, done, state), daemon=True
    )
    state["thread"].start()
  os.makedirs(args.out, exist_ok=True)
  paths = []
  try:
    with sync_playwright() as pw:
      browser = chromium.launch(pw, args.chromium)
      page = browser.new_page(
        viewport={"width": args.width, "height": args.height}
      )
      page.goto(viewer.url)
      page.wait_for_selector("canvas", timeout=60000)
      print("braxviewer: waiting for the run ...", flush=True)
      done.wait()
      if "error" in state:
        raise state["error"]
      _hide_notice(page)
      if args.camera:
        page.get_by_role("tab", name="Envs").click()
        page.get_by_role("button", name=args.camera, exact=True).click()
      time.sleep(3.0)
      for tab in ("Live", "Envs", "Training"):
        page.get_by_role("tab", name=tab).click()
        time.sleep(2.5)
        path = os.path.join(args.out, f"{args.prefix}_{tab.lower()}.png")
        page.screenshot(path=path)
        paths.append(path)
        print(f"braxviewer: saved {path}", flush=True)
      browser.close()
  finally:
    state["stop"] = True  # the next eval ends the training
    if stream is not None:
      stream.stop()
    viewer.close()
    if "thread" in state:
      state["thread"].join(timeout=600)
  return paths


def main(argv: Optional[List[str]] = None) -> int:
  take(_parse(argv))
  return 0


if __name__ == "__main__":
  sys.exit(main())
