"""The compile cache: on where it pays (GPU/TPU), never on a CPU backend
(jaxlib's CPU loader rejects its entries and once hung in CI)."""

from __future__ import annotations

import jax
import pytest

from braxviewer.app import compile_cache

SETTINGS = (
  "jax_compilation_cache_dir",
  "jax_persistent_cache_min_compile_time_secs",
  "jax_persistent_cache_min_entry_size_bytes",
)


@pytest.fixture
def jax_settings():
  """Put JAX's cache settings back after the test (they are global)."""
  before = {name: getattr(jax.config, name) for name in SETTINGS}
  yield
  for name, value in before.items():
    jax.config.update(name, value)


@pytest.fixture
def on_a_gpu(monkeypatch):
  """What enable() sees where JAX runs on a GPU."""
  monkeypatch.setattr(compile_cache.jax, "default_backend", lambda: "gpu")


@pytest.mark.parametrize("setting", [None, "/tmp/asked-for"])
def test_on_a_cpu_the_cache_stays_off_even_when_a_directory_is_set(
  monkeypatch, setting, jax_settings
):
  assert jax.default_backend() == "cpu"
  if setting is None:
    monkeypatch.delenv(compile_cache.ENV_VAR, raising=False)
  else:
    monkeypatch.setenv(compile_cache.ENV_VAR, setting)
  before = jax.config.jax_compilation_cache_dir
  assert compile_cache.enable() is None
  assert compile_cache.enable("/tmp/also-asked") is None
  assert jax.config.jax_compilation_cache_dir == before


def test_on_a_gpu_it_uses_the_users_cache_dir(
  monkeypatch, tmp_path, on_a_gpu, jax_settings
):
  monkeypatch.delenv(compile_cache.ENV_VAR, raising=False)
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
  expected = str(tmp_path / "braxviewer" / "jax")
  assert compile_cache.enable() == expected
  assert jax.config.jax_compilation_cache_dir == expected
  # every program is kept, not only the slow ones
  assert jax.config.jax_persistent_cache_min_compile_time_secs == 0.0


def test_a_directory_in_the_environment_moves_it(
  monkeypatch, tmp_path, on_a_gpu, jax_settings
):
  where = str(tmp_path / "cache")
  monkeypatch.setenv(compile_cache.ENV_VAR, where)
  assert compile_cache.enable() == where
  assert jax.config.jax_compilation_cache_dir == where


@pytest.mark.parametrize("word", ["0", "off", "no"])
def test_zero_turns_it_off_on_a_gpu_too(
  monkeypatch, word, on_a_gpu, jax_settings
):
  monkeypatch.setenv(compile_cache.ENV_VAR, word)
  before = jax.config.jax_compilation_cache_dir
  assert compile_cache.enable() is None
  assert jax.config.jax_compilation_cache_dir == before


def test_a_directory_that_cannot_be_made_leaves_it_off(
  monkeypatch, tmp_path, on_a_gpu, jax_settings
):
  blocker = tmp_path / "a_file"
  blocker.write_text("not a directory")
  monkeypatch.setenv(compile_cache.ENV_VAR, str(blocker / "cache"))
  before = jax.config.jax_compilation_cache_dir
  assert compile_cache.enable() is None
  assert jax.config.jax_compilation_cache_dir == before
