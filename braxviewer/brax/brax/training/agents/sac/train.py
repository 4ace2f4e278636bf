"""``braxviewer.brax.brax.training.agents.sac.train``: the original project's
import path for the SAC trainer; the same as
:mod:`braxviewer.brax.training.agents.sac.train`."""

from braxviewer.brax.training.agents.sac.train import TrainingState, train

__all__ = ["TrainingState", "train"]
