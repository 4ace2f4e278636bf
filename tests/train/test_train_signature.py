"""The swapped imports accept everything upstream's ppo.train and
sac.train accept."""

import inspect

from brax.training.agents.ppo import train as upstream_ppo
from brax.training.agents.sac import train as upstream_sac
import pytest

from braxviewer.brax.brax.training.agents.sac import train as sac_alias
from braxviewer.brax.training.agents.ppo import train as ours_ppo
from braxviewer.brax.training.agents.sac import train as ours_sac

# (upstream, ours, at least this many upstream parameters)
TRAINERS = {
  "ppo": (upstream_ppo.train, ours_ppo.train, 50),
  "sac": (upstream_sac.train, ours_sac.train, 25),
}


@pytest.mark.parametrize("trainer", TRAINERS)
def test_every_upstream_parameter_is_accepted_with_the_same_default(trainer):
  upstream, ours, at_least = TRAINERS[trainer]
  up = inspect.signature(upstream).parameters
  mine = inspect.signature(ours).parameters
  assert len(up) >= at_least
  for name, param in up.items():
    assert name in mine, f"missing parameter {name}"
    assert mine[name].kind == param.kind, name
    if param.default is inspect.Parameter.empty:
      assert mine[name].default is inspect.Parameter.empty, name
    elif (
      callable(param.default)
      and getattr(param.default, "__name__", "") == "<lambda>"
    ):
      assert callable(mine[name].default), name
    else:
      assert mine[name].default == param.default, name


@pytest.mark.parametrize("trainer", TRAINERS)
def test_parameters_keep_upstream_order_and_add_viewer_last(trainer):
  upstream, ours, _ = TRAINERS[trainer]
  up = list(inspect.signature(upstream).parameters)
  mine = list(inspect.signature(ours).parameters)
  assert mine[: len(up)] == up
  assert "viewer" in mine[len(up) :]
  assert inspect.signature(ours).parameters["viewer"].default is None


def test_the_original_projects_import_path_is_the_same_sac_trainer():
  assert sac_alias.train is ours_sac.train
