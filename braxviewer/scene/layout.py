"""Where N envs are drawn: side by side on a grid, or overlaid on one world.

``"grid"``: env ``i`` is drawn in its own cell (:mod:`braxviewer.scene.grid`).
``"overlay"``: every env is drawn where it really is (offset 0): all envs are
simulated on the same world, which is drawn once, with only the robots (the
bodies that are not welded to the world) drawn per env. ``"auto"`` picks
overlay for a mobile robot on terrain (:func:`braxviewer.scene.grid.has_terrain`:
a heightfield, or a static world over 4x the robot's size), else grid.
numpy + mujoco only.
"""

from __future__ import annotations

import mujoco
import numpy as np

from braxviewer.scene import grid

LAYOUTS = ("grid", "overlay", "auto")


def check_layout(layout: object, env_offset: object = None) -> str:
  """``layout`` if it is one of :data:`LAYOUTS` (and not ``"overlay"``
  with an ``env_offset``: overlaid envs have no spacing), else a
  ValueError saying what to pass."""
  if not isinstance(layout, str) or layout not in LAYOUTS:
    raise ValueError(
      f"layout must be one of {LAYOUTS}, got {layout!r}: 'grid' draws every"
      " env in its own cell, 'overlay' every env where it is on one shared"
      " world, 'auto' (default) picks overlay for a mobile robot on terrain."
    )
  if layout == "overlay" and env_offset is not None:
    raise ValueError(
      "env_offset spaces envs on a grid, but layout='overlay' draws every"
      " env where it is: pass layout='grid' with env_offset, or no"
      " env_offset."
    )
  return layout


def choose_layout(
  model: mujoco.MjModel, layout: str = "auto", env_offset: object = None
) -> str:
  """``"grid"`` or ``"overlay"`` for ``model``.

  Args:
    model: the single-env model.
    layout: one of :data:`LAYOUTS`.
    env_offset: the grid spacing asked for, if any: under ``"auto"`` it
      means a grid.

  Raises:
    ValueError: an unknown ``layout``, or ``"overlay"`` with an
      ``env_offset`` (overlaid envs have no spacing).
  """
  layout = check_layout(layout, env_offset)
  if layout != "auto":
    return layout
  if env_offset is None and grid.has_terrain(model):
    return "overlay"
  return "grid"


def shared_bodies(model: mujoco.MjModel, layout: str) -> np.ndarray:
  """``(nbody,)`` True for bodies whose geoms are drawn once for all envs,
  not per env: in ``"overlay"`` every body welded to the world; on a grid
  those of a terrain (which the cells leave out), none otherwise."""
  static = np.asarray(model.body_weldid == 0)
  layout = choose_layout(model, layout)
  if layout == "overlay" or grid.has_terrain(model):
    return static
  return np.zeros(model.nbody, dtype=bool)
