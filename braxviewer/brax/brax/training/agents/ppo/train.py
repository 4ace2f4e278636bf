"""``braxviewer.brax.brax.training.agents.ppo.train``: the original project's
import path for the trainer; the same as
:mod:`braxviewer.brax.training.agents.ppo.train`."""

from braxviewer.brax.training.agents.ppo.train import TrainingState, train

__all__ = ["TrainingState", "train"]
