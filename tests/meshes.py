"""Small mesh files for tests that load models with mesh assets."""

# A tetrahedron, 10 cm edges, as Wavefront OBJ bytes.
TETRA_OBJ = b"""v 0 0 0
v 0.1 0 0
v 0 0.1 0
v 0 0 0.1
f 1 3 2
f 1 2 4
f 1 4 3
f 2 3 4
"""
