"""Bad input fails with a clear message before anything compiles."""

from brax import envs
import pytest
from tiny_training import TINY, count_compiles

from braxviewer import HeadlessViewer
from braxviewer.brax.training.agents.ppo import train as ours


class _NoModelEnv(envs.Env):
  """A brax Env with no MuJoCo model behind it."""

  def reset(self, rng):
    raise AssertionError("must not be reached")

  def step(self, state, action):
    raise AssertionError("must not be reached")

  @property
  def observation_size(self):
    return 3

  @property
  def action_size(self):
    return 1

  @property
  def backend(self):
    return "none"


class _AsksFor(HeadlessViewer):
  def __init__(self, n):
    super().__init__()
    self._n = n

  def requested_envs(self):
    return self._n


def _train(env, viewer):
  ours.train(environment=env, viewer=viewer, **TINY)


@pytest.fixture(scope="module")
def pendulum():
  return envs.get_environment("inverted_pendulum", backend="generalized")


def test_more_view_envs_than_envs_per_device_is_refused_before_compiling(
  pendulum,
):
  with count_compiles() as counter, pytest.raises(ValueError) as err:
    _train(pendulum, HeadlessViewer(num_envs=9))
  assert "9 envs" in str(err.value) and "only 8" in str(err.value)
  assert counter.count == 0


def test_env_without_mujoco_model_is_refused_before_compiling():
  with count_compiles() as counter, pytest.raises(ValueError) as err:
    _train(_NoModelEnv(), HeadlessViewer(num_envs=2))
  assert "_NoModelEnv" in str(err.value) and "MuJoCo model" in str(err.value)
  assert counter.count == 0


@pytest.mark.parametrize("bad", ["yes", object(), 3])
def test_viewer_of_the_wrong_kind_is_refused_before_compiling(pendulum, bad):
  with count_compiles() as counter, pytest.raises(TypeError) as err:
    _train(pendulum, bad)
  assert "viewer= must be a braxviewer viewer" in str(err.value)
  assert type(bad).__name__ in str(err.value)
  assert counter.count == 0


@pytest.mark.parametrize("n", [0, -3])
def test_non_positive_view_env_count_is_refused_before_compiling(pendulum, n):
  with count_compiles() as counter, pytest.raises(ValueError) as err:
    _train(pendulum, _AsksFor(n))
  assert f"asks for {n} envs" in str(err.value)
  assert counter.count == 0
  with pytest.raises(ValueError, match="num_envs must be a positive int"):
    HeadlessViewer(num_envs=n)


def test_unknown_mode_names_the_valid_ones():
  with pytest.raises(ValueError, match="'off', 'live', 'sync'"):
    HeadlessViewer(mode="fast")
