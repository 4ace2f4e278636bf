"""The demos' and the CLI's flags for a tiny training: as small as they
allow (shared by the tests that start them)."""

TINY_FLAGS = [
  "--num-envs",
  "8",
  "--timesteps",
  "2000",
  "--evals",
  "2",
  "--port",
  "0",
  "--no-progress",
]
