"""``braxviewer.brax.training.agents.ppo.train``: brax's import path with a
``braxviewer.`` prefix, so swapping the trainer is one import. The trainer
is :mod:`braxviewer.train.ppo`."""

from braxviewer.train.ppo import TrainingState, train

__all__ = ["TrainingState", "train"]
