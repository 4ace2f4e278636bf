"""Train the custom CartPole and watch a grid of training envs, live.

The original batched example: the grid is laid out by
``WebViewerBatched.concatenate_envs_xml`` (N copies of the inline XML, built
with MuJoCo's MjSpec), and the viewer streams the first N training envs.

    python demo/cartpole_batched.py --view-envs 8   # http://127.0.0.1:8000
"""

from __future__ import annotations

import math

from cartpole import CARTPOLE_XML, CartPole
import mujoco

from braxviewer.app import cli, compile_cache
from braxviewer.brax.training.agents.ppo import train as ppo
from braxviewer.WebViewerBatched import WebViewerBatched


def main(argv=None) -> int:
  parser = cli.demo_parser(
    __doc__, num_envs=128, view_envs=8, timesteps=300_000
  )
  args = cli.parse_demo_args(parser, argv)
  compile_cache.enable()  # on a GPU, a second run skips compiling

  columns = math.ceil(math.sqrt(args.view_envs))
  grid_dims = (columns, math.ceil(args.view_envs / columns), 1)
  env_offset = (3.5, 1.0, 0.0)  # the rail is 3 m long

  # The grid, as one MJCF: compiles in MuJoCo (and its native viewer) too.
  grid_xml = WebViewerBatched.concatenate_envs_xml(
    xml_string=CARTPOLE_XML,
    num_envs=args.view_envs,
    grid_dims=grid_dims,
    env_offset=env_offset,
  )
  grid = mujoco.MjModel.from_xml_string(grid_xml)
  print(
    f"grid of {args.view_envs} cartpoles: {grid.nbody - 1} bodies,"
    f" {grid.nq} qpos",
    flush=True,
  )

  env = CartPole()  # training runs on the single-env definition
  viewer = WebViewerBatched(
    num_envs=args.view_envs,
    grid_dims=grid_dims,
    env_offset=env_offset,
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
      **cli.ppo_config(args, episode_length=500, num_evals=10),
    )
    if args.keep_open:
      session.keep_open()
  return session.exit_code


if __name__ == "__main__":
  cli.exit_with(main())
