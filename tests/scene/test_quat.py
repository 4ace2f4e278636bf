"""braxviewer.scene.quat against MuJoCo's own quaternion functions, on
random quaternions (batched, any leading axes)."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from braxviewer.scene import quat


def _unit(rng: np.random.Generator, shape) -> np.ndarray:
  q = rng.normal(size=tuple(shape) + (4,))
  return q / np.linalg.norm(q, axis=-1, keepdims=True)


@pytest.fixture
def rng() -> np.random.Generator:
  return np.random.default_rng(20261201)


def _each(shape):
  return np.ndindex(*shape)


def test_to_matrix_matches_mju_quat2mat(rng):
  q = _unit(rng, (6, 5))
  got = quat.to_matrix(q)
  assert got.shape == (6, 5, 3, 3) and got.dtype == np.float64
  for i in _each(q.shape[:-1]):
    want = np.zeros(9)
    mujoco.mju_quat2Mat(want, q[i])
    np.testing.assert_allclose(got[i], want.reshape(3, 3), atol=1e-14)


def test_to_matrix_normalises_any_length(rng):
  q = _unit(rng, (40,))
  scaled = q * rng.uniform(0.01, 100.0, size=(40, 1))
  np.testing.assert_allclose(
    quat.to_matrix(scaled), quat.to_matrix(q), atol=1e-13
  )
  mats = quat.to_matrix(scaled.astype(np.float32))  # float64 out
  assert mats.dtype == np.float64
  eye = np.einsum("nij,nkj->nik", mats, mats)
  np.testing.assert_allclose(
    eye, np.broadcast_to(np.eye(3), eye.shape), atol=1e-6
  )


def test_identity_and_one_quaternion():
  np.testing.assert_array_equal(quat.to_matrix([1.0, 0, 0, 0]), np.eye(3))
  half_turn_z = quat.to_matrix(np.array([0.0, 0.0, 0.0, 1.0]))
  np.testing.assert_allclose(half_turn_z, np.diag([-1.0, -1.0, 1.0]))


def test_multiply_matches_mju_mulquat(rng):
  a, b = _unit(rng, (7, 3)), _unit(rng, (7, 3))
  got = quat.multiply(a, b)
  for i in _each(a.shape[:-1]):
    want = np.zeros(4)
    mujoco.mju_mulQuat(want, a[i], b[i])
    np.testing.assert_allclose(got[i], want, atol=1e-14)


def test_multiply_broadcasts_one_against_many(rng):
  a, b = _unit(rng, (1,)), _unit(rng, (9,))
  got = quat.multiply(a[0], b)
  for i in range(9):
    want = np.zeros(4)
    mujoco.mju_mulQuat(want, a[0], b[i])
    np.testing.assert_allclose(got[i], want, atol=1e-14)


def test_rotate_matches_mju_rotvecquat(rng):
  q = _unit(rng, (30,))
  v = rng.normal(size=(30, 3))
  got = quat.rotate(q, v)
  for i in range(30):
    want = np.zeros(3)
    mujoco.mju_rotVecQuat(want, v[i], q[i])
    np.testing.assert_allclose(got[i], want, atol=1e-13)


def test_matrix_of_a_product_is_the_product_of_matrices(rng):
  a, b = _unit(rng, (20,)), _unit(rng, (20,))
  np.testing.assert_allclose(
    quat.to_matrix(quat.multiply(a, b)),
    quat.to_matrix(a) @ quat.to_matrix(b),
    atol=1e-13,
  )


def test_z_to_turns_plus_z_onto_the_direction(rng):
  d = rng.normal(size=(50, 3)) * rng.uniform(0.001, 10.0, size=(50, 1))
  d[0] = [0.0, 0.0, -3.0]  # straight down: half a turn
  d[1] = [0.0, 0.0, 2.0]  # straight up: no turn
  q = quat.z_to(d)
  np.testing.assert_allclose(np.linalg.norm(q, axis=-1), 1.0, atol=1e-12)
  want = d / np.linalg.norm(d, axis=-1, keepdims=True)
  np.testing.assert_allclose(quat.to_matrix(q)[:, :, 2], want, atol=1e-12)
  np.testing.assert_allclose(
    quat.rotate(q, np.array([0.0, 0.0, 1.0])), want, atol=1e-12
  )
  np.testing.assert_allclose(q[1], [1.0, 0.0, 0.0, 0.0])


def test_z_to_a_zero_direction_is_no_turn():
  q = quat.z_to(np.zeros((2, 3)))
  np.testing.assert_allclose(q, [[1.0, 0.0, 0.0, 0.0]] * 2)
