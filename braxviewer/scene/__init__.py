"""N-copy MuJoCo models and their poses: where an env keeps its model,
the grid, layouts, kinematics, tendons. MuJoCo and numpy: no JAX, no web.
"""
