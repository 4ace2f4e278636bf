"""``braxviewer.brax.training.agents.sac.train``: brax's import path with a
``braxviewer.`` prefix, so swapping the trainer is one import. The trainer
is :mod:`braxviewer.train.sac`."""

from braxviewer.train.sac import TrainingState, train

__all__ = ["TrainingState", "train"]
