"""The main demo: PPO on any brax env, the first N envs live in the browser.

    python demo/training_example.py --env hopper --view-envs 16
    # then open http://127.0.0.1:8000

The code is braxviewer/app/train.py (so `python -m braxviewer train` runs
the very same); read it for the five lines that wire a viewer into training.
"""

from braxviewer.app import cli
from braxviewer.app.train import main

if __name__ == "__main__":
  cli.exit_with(main())
