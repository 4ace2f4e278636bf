"""The swapped SAC import accepts everything upstream's sac.train accepts."""

import inspect

from brax.training.agents.sac import train as upstream

from braxviewer.brax.brax.training.agents.sac import train as alias
from braxviewer.brax.training.agents.sac import train as ours


def test_every_upstream_sac_parameter_is_accepted_with_the_same_default():
  up = inspect.signature(upstream.train).parameters
  mine = inspect.signature(ours.train).parameters
  assert len(up) >= 25
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


def test_sac_parameters_keep_upstream_order_and_add_viewer_last():
  up = list(inspect.signature(upstream.train).parameters)
  mine = list(inspect.signature(ours.train).parameters)
  assert mine[: len(up)] == up
  assert "viewer" in mine[len(up) :]
  assert inspect.signature(ours.train).parameters["viewer"].default is None


def test_the_original_projects_import_path_is_the_same_sac_trainer():
  assert alias.train is ours.train
