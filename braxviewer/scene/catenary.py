"""The hanging string MuJoCo's viewer draws for a slack tendon.

A spatial tendon of two sites under gravity, with no stiffness, damping or
actuator to hold it straight, is drawn by MuJoCo as a catenary between its
ends (a taut one as a straight line, a nearly vertical one bent at one
bead). :func:`catenary` gives those points for many tendons at once, the
curve's parameter found by Newton's method in numpy, as
:mod:`braxviewer.scene.tendons` needs them. numpy only.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np


def catenary(
  start: np.ndarray,
  end: np.ndarray,
  up: np.ndarray,
  length: np.ndarray,
  count: int,
) -> Tuple[np.ndarray, np.ndarray]:
  """Points where MuJoCo's viewer draws a string of ``length`` hanging
  between ``start (M, 3)`` and ``end (M, 3)`` (``up``: against gravity).

  Returns ``(points (M, count, 3), used (M,))``: a taut string is its two
  ends, a nearly vertical one bends at one bead (3 points), otherwise a
  catenary of ``count`` points, its inner ones at ``i / count`` of the
  horizontal span (as MuJoCo places them). Points past ``used`` repeat the
  end.
  """
  start = np.asarray(start, dtype=np.float64)
  end = np.asarray(end, dtype=np.float64)
  length = np.asarray(length, dtype=np.float64)
  gap = end - start
  rise = gap @ up  # height of the end over the start
  across = gap - rise[:, None] * up
  span = np.linalg.norm(across, axis=1)  # horizontal distance
  across = np.where(
    span[:, None] > 1e-15, across / np.maximum(span, 1e-300)[:, None], 0.0
  )
  points = np.repeat(end[:, None], count, axis=1)
  points[:, 0] = start
  used = np.full(len(start), count)
  taut = np.linalg.norm(gap, axis=1) > length
  used[taut] = 2
  bead = ~taut & (length > 100.0 * span)
  if bead.any():  # the lowest point of a string through a frictionless bead
    drop = np.sqrt(length[bead] ** 2 - span[bead] ** 2)
    first = 0.5 * (length[bead] - rise[bead] * length[bead] / drop)
    down = first * drop / length[bead]
    side = first * span[bead] / length[bead]
    points[bead, 1] = (
      start[bead] - down[:, None] * up + side[:, None] * across[bead]
    )
    used[bead] = 3
  full = ~taut & ~bead
  if full.any():
    a = _catenary_parameter(span[full], rise[full], length[full])
    h, v = span[full], rise[full]
    lowest = 0.5 * h - a * np.arctanh(v / length[full])  # x of the vertex
    x = np.arange(1, count - 1) * h[:, None] / count  # (M, count - 2)
    # a cosh((x - lowest)/a) - a cosh(lowest/a), without cancellation
    y = (
      2.0
      * a[:, None]
      * (
        np.sinh((x - 2.0 * lowest[:, None]) / (2.0 * a[:, None]))
        * np.sinh(x / (2.0 * a[:, None]))
      )
    )
    points[full, 1 : count - 1] = (
      start[full][:, None]
      + x[..., None] * across[full][:, None]
      + y[..., None] * up
    )
  return points, used


def _log_sinhc(u: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
  """``log(sinh(u) / u)`` and its derivative, also for tiny ``u``."""
  big = u >= 1e-4
  safe = np.where(big, u, 1.0)
  value = np.where(big, np.log(np.sinh(safe) / safe), u * u / 6.0)
  slope = np.where(big, 1.0 / np.tanh(safe) - 1.0 / safe, u / 3.0)
  return value, slope


def _catenary_parameter(
  span: np.ndarray, rise: np.ndarray, length: np.ndarray
) -> np.ndarray:
  """``a`` of the catenary ``a cosh(x / a)`` of ``length`` spanning
  ``span`` across and ``rise`` up: ``sinh(u) / u = sqrt(L^2 - v^2) / h``
  with ``u = h / 2a``, by Newton's method on ``log(sinh(u) / u)``."""
  ratio = np.sqrt(length**2 - rise**2) / span
  target = np.log(ratio)
  # near 1: sinh(u)/u ~ 1 + u^2/6; far: ~ e^u / 2u (both close enough
  # for Newton on a convex rising function, from either side)
  twice = np.log(2.0 * np.maximum(ratio, 1.5))
  u = np.where(
    ratio < 3.0,
    np.sqrt(6.0 * np.maximum(ratio - 1.0, 0.0)),
    twice + np.log(twice),
  )
  for _ in range(100):
    value, slope = _log_sinhc(u)
    step = (value - target) / np.maximum(slope, 1e-300)
    u = np.maximum(u - step, 1e-300)
    if np.all(np.abs(step) <= 1e-12 * np.maximum(u, 1e-12)):
      break
  return span / (2.0 * u)
