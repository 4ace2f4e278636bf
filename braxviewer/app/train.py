"""The main demo: train any brax env with PPO and watch N envs learn live.

    python -m braxviewer train --env hopper --view-envs 16
    python demo/training_example.py --env ant --backend mjx

What it does is the whole integration a user makes in their own script:
swap the ppo import, create a viewer, run it, init it with the env, and pass
``viewer=`` to ``ppo.train``.
"""

from __future__ import annotations

import sys
from typing import Optional, Sequence

from braxviewer.app import cli

BACKENDS = ("mjx", "generalized", "positional", "spring")
# brax 0.14's env names, so that --help and bad flags answer before JAX and
# brax load (seconds); tests/app/test_console.py checks them against brax.
ENVS = (
  "ant",
  "fast",
  "halfcheetah",
  "hopper",
  "humanoid",
  "humanoidstandup",
  "inverted_double_pendulum",
  "inverted_pendulum",
  "pusher",
  "reacher",
  "swimmer",
  "walker2d",
)
# Settings that show learning within minutes on a 2-core CPU; other envs get
# the generic ones (they learn too, just slower).
ENV_SETTINGS = {
  "inverted_pendulum": dict(episode_length=1000, timesteps=400_000),
  "inverted_double_pendulum": dict(episode_length=1000, timesteps=1_500_000),
  "reacher": dict(episode_length=500, timesteps=1_000_000),
  "hopper": dict(episode_length=1000, timesteps=3_000_000),
}
GENERIC = dict(episode_length=1000, timesteps=2_000_000)


def parser():
  p = cli.demo_parser(
    __doc__,
    num_envs=128,
    view_envs=16,
    timesteps=0,
    timesteps_help="env steps to train for (default: enough to learn the env"
    " in minutes on a CPU, e.g. 400,000 for inverted_pendulum)",
  )
  p.add_argument(
    "--env",
    default="inverted_pendulum",
    help=f"brax env name: {', '.join(ENVS)}",
  )
  p.add_argument(
    "--backend",
    default="generalized",
    choices=BACKENDS,
    help="brax physics backend",
  )
  p.set_defaults(timesteps=None)
  return p


def _prepare(args) -> None:
  if args.env not in ENVS:
    raise cli.UsageError(
      f"unknown env {args.env!r}; brax has: {', '.join(ENVS)}."
    )
  settings = {**GENERIC, **ENV_SETTINGS.get(args.env, {})}
  args.episode_length = settings["episode_length"]
  if args.timesteps is None:
    args.timesteps = settings["timesteps"]


def main(argv: Optional[Sequence[str]] = None) -> int:
  args = cli.parse_demo_args(parser(), argv, prepare=_prepare)
  # JAX and brax only now: --help and bad flags answer at once
  from brax import envs

  from braxviewer.app import compile_cache
  from braxviewer.train import ppo
  from braxviewer.web.viewer import WebViewerBatched

  compile_cache.enable()  # on a GPU, a second run skips compiling

  env = envs.get_environment(args.env, backend=args.backend)
  viewer = WebViewerBatched(
    num_envs=args.view_envs, mode=args.mode, **cli.page_options(args)
  )
  with cli.training_session(viewer, verbose=args.verbose) as session:
    viewer.run()
    viewer.init(env)
    session.train(
      ppo.train,
      environment=env,
      **cli.ppo_config(args, episode_length=args.episode_length),
    )
    if args.keep_open:
      session.keep_open()
  return session.exit_code


if __name__ == "__main__":
  sys.exit(main())
