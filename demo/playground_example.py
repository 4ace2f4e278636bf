"""Train a MuJoCo Playground env with the swapped import, watch it live.

Playground's DM Control Suite envs load offline from the package, and train
through Playground's own brax wrapper, exactly as in Playground's notebooks.

    python demo/playground_example.py --env CartpoleBalance  # :8000
"""

from __future__ import annotations

from braxviewer.app import cli


def main(argv=None) -> int:
  parser = cli.demo_parser(
    __doc__, num_envs=128, view_envs=9, timesteps=500_000
  )
  parser.add_argument(
    "--env",
    default="CartpoleBalance",
    help="a DM Control Suite env of MuJoCo Playground",
  )

  args = cli.parse_demo_args(parser, argv)
  # JAX and Playground only now: --help and bad flags answer at once
  from mujoco_playground import registry, wrapper

  from braxviewer.app import compile_cache
  from braxviewer.brax.training.agents.ppo import train as ppo
  from braxviewer.WebViewerBatched import WebViewerBatched

  names = registry.dm_control_suite.ALL_ENVS
  if args.env not in names:
    parser.exit(
      2,
      f"{parser.prog}: error: unknown Playground env {args.env!r}; DM Control"
      f" Suite envs: {', '.join(names)}.\n",
    )
  compile_cache.enable()  # on a GPU, a second run skips compiling
  env = registry.load(args.env)
  env_cfg = registry.get_default_config(args.env)
  viewer = WebViewerBatched(
    num_envs=args.view_envs,
    host=args.host,
    port=args.port,
    mode=args.mode,
    layout=args.layout,
  )
  with cli.training_session(viewer, verbose=args.verbose) as session:
    viewer.run()
    viewer.init(env)
    session.train(
      ppo.train,
      environment=env,
      wrap_env_fn=wrapper.wrap_for_brax_training,
      **cli.ppo_config(
        args,
        episode_length=env_cfg.episode_length,
        action_repeat=env_cfg.action_repeat,
        discounting=0.99,
      ),
    )
    if args.keep_open:
      session.keep_open()
  return session.exit_code


if __name__ == "__main__":
  cli.exit_with(main())
