"""The page draws what MuJoCo's own viewer draws: geoms, sites, walls and
spatial tendons where ``mjv_updateScene`` puts them, in every env."""

from __future__ import annotations

import types

import mujoco
from mujoco_playground import registry
import numpy as np
import pytest
import trimesh
import viser

from braxviewer.scene.batched import BatchedScene
from braxviewer.scene.grid import is_floor
from braxviewer.scene.tendons import TendonPaths
from braxviewer.web.drawn import drawn_items
from braxviewer.web.page import Page
from braxviewer.web.primitives import Parts
from braxviewer.web.render import SceneView

_OBJ = {
  int(mujoco.mjtObj.mjOBJ_GEOM): "geom",
  int(mujoco.mjtObj.mjOBJ_SITE): "site",
  int(mujoco.mjtObj.mjOBJ_TENDON): "tendon",
}
CATEGORIES = ("geom", "site", "tendon")


def mujoco_draws(model: mujoco.MjModel, data: mujoco.MjData):
  """Centres of what MuJoCo's viewer draws by default, per category; floors
  left out (the page draws its ground grid for them)."""
  scene = mujoco.MjvScene(model, 10000)
  mujoco.mjv_updateScene(
    model,
    data,
    mujoco.MjvOption(),
    None,
    mujoco.MjvCamera(),
    mujoco.mjtCatBit.mjCAT_ALL,
    scene,
  )
  out = {c: [] for c in CATEGORIES}
  for geom in scene.geoms[: scene.ngeom]:
    category = _OBJ.get(int(geom.objtype))
    if category is None or (category == "geom" and is_floor(model, geom.objid)):
      continue
    out[category].append(np.array(geom.pos, dtype=np.float64))
  return {c: np.reshape(v, (-1, 3)) for c, v in out.items()}


def page_draws(model, xpos, xquat, parts=None, tendons=None):
  items = drawn_items(model, xpos, xquat, parts=parts, tendons=tendons)
  return {
    c: np.reshape([i.pos for i in items if i.category == c], (-1, 3))
    for c in CATEGORIES
  }


def assert_same_places(ours, theirs, tol=1e-5):
  """The same number of objects per category, each at one of the other's
  positions (to ``tol`` metres; MuJoCo's are float32)."""
  for category in CATEGORIES:
    a, b = ours[category], theirs[category]
    assert len(a) == len(b), (category, len(a), len(b))
    if len(a):
      dist = np.linalg.norm(a[:, None] - b[None], axis=-1)
      assert dist.min(axis=0).max() <= tol, category
      assert dist.min(axis=1).max() <= tol, category


def posed(model: mujoco.MjModel, seed: int = 0) -> mujoco.MjData:
  """The model's own data away from its rest pose, after mj_forward."""
  data = mujoco.MjData(model)
  rng = np.random.default_rng(seed)
  data.qpos[:] = model.qpos0 + rng.normal(0.0, 0.2, model.nq)
  mujoco.mj_normalizeQuat(model, data.qpos)
  mujoco.mj_forward(model, data)
  return data


@pytest.fixture(scope="module")
def server():
  server = viser.ViserServer(port=0, verbose=False)
  yield server
  server.stop()


def drawn_instances(view: SceneView):
  """Per shape of the view: the positions of all its drawn instances."""
  out = []
  for shape, handles in zip(view._parts.shapes, view._meshes.handles):
    pos = [np.asarray(h.batched_positions) for h in handles if h.visible]
    out.append((shape, np.concatenate(pos) if pos else np.zeros((0, 3))))
  return out


@pytest.mark.parametrize("name", registry.dm_control_suite.ALL_ENVS)
def test_every_dm_control_env_draws_what_mujoco_draws(name, server):
  model = registry.load(name).mj_model
  data = posed(model)
  parts, tendons = Parts(model), TendonPaths(model)
  theirs = mujoco_draws(model, data)
  assert_same_places(
    page_draws(model, data.xpos, data.xquat, parts, tendons), theirs
  )
  if name == "BallInCup":  # the slack string hangs as a catenary
    assert len(theirs["tendon"]) > 2
  for n in (1, 4, 16):
    scene = BatchedScene(model, n)
    poses = scene.poses_from_qpos(np.tile(data.qpos, (n, 1)))
    view = SceneView(server, model, scene.offsets)
    try:
      view.show(poses.xpos, poses.xquat)
      shift = scene.offsets - scene.offsets[0]
      for shape, pos in drawn_instances(view):
        # every part of every env, once, each env at its grid offset
        assert len(pos) == n * shape.num_parts
        pos = pos.reshape(n, shape.num_parts, 3)
        assert np.allclose(pos - shift[:, None], pos[:1], atol=1e-5)
      for env in (0, n - 1):  # the envs' own items, offset included
        assert_same_places(
          page_draws(model, poses.xpos[env], poses.xquat[env], parts, tendons),
          {c: p + shift[env] for c, p in theirs.items()},
        )
      if tendons:
        handle = view._tubes.handle
        pos = np.asarray(handle.batched_positions).reshape(n, -1, 3)
        used = np.asarray(handle.batched_scales).reshape(n, -1, 3)[..., 0] > 0
        assert used.sum() == n * len(theirs["tendon"])
        assert np.allclose(
          pos[:, used[0]] - shift[:, None], pos[:1, used[0]], atol=1e-5
        )
    finally:
      view.remove()


TWO_BEADS = """
<mujoco>
  <option gravity="0 0 -9.81"/>
  <worldbody>
    <geom name="floor" type="plane" size="2 2 0.1"/>
    <geom name="wall" type="plane" size="0.5 0.2 0.1" pos="0 1 0.2"
          zaxis="0 -1 0" rgba="0.2 0.6 0.9 1"/>
    <body name="a" pos="-0.3 0 0.5">
      <joint name="ax" type="slide" axis="1 0 0"/>
      <joint name="az" type="slide" axis="0 0 1"/>
      <geom type="sphere" size="0.05"/>
      <site name="sa" pos="0 0 -0.05" size="0.02" rgba="1 0 0 1"/>
    </body>
    <body name="b" pos="0.3 0 0.5">
      <joint name="bz" type="slide" axis="0 0 1"/>
      <geom type="box" size="0.05 0.05 0.05"/>
      <site name="sb" type="box" size="0.01 0.02 0.03" rgba="0 1 0 1"/>
      <site name="hidden" group="4" size="0.02"/>
      <site name="clear" size="0.02" rgba="1 1 1 0"/>
    </body>
  </worldbody>
  <tendon>
    <spatial name="string" width="0.004" rgba="0.9 0.1 0.1 1">
      <site site="sa"/><site site="sb"/>
    </spatial>
  </tendon>
</mujoco>
"""


def test_a_tendon_between_two_sites_follows_the_bodies(server):
  model = mujoco.MjModel.from_xml_string(TWO_BEADS)
  scene = BatchedScene(model, 2, env_offset=(3.0, 3.0, 1.0))
  view = SceneView(server, model, scene.offsets)
  try:
    for qpos in ([0.0, 0.0, 0.0], [0.2, 0.3, -0.1]):
      poses = scene.poses_from_qpos(np.tile(qpos, (2, 1)))
      view.show(poses.xpos, poses.xquat)
      data = mujoco.MjData(model)
      data.qpos[:] = qpos
      mujoco.mj_forward(model, data)
      ends = data.site_xpos[:2]
      handle = view._tubes.handle
      pos = np.asarray(handle.batched_positions).reshape(2, -1, 3)
      scale = np.asarray(handle.batched_scales).reshape(2, -1, 3)
      for env in range(2):  # one straight piece from site to site
        used = scale[env, :, 0] > 0
        assert used.sum() == 1
        mid = ends.mean(axis=0) + scene.offsets[env]
        assert np.allclose(pos[env, used][0], mid, atol=1e-5)
        half = np.linalg.norm(ends[1] - ends[0]) / 2
        assert np.isclose(scale[env, used][0, 2], half)
        assert np.isclose(scale[env, used][0, 0], 0.004)
      assert_same_places(
        page_draws(model, poses.xpos[1], poses.xquat[1]),
        {c: p + scene.offsets[1] for c, p in mujoco_draws(model, data).items()},
      )
  finally:
    view.remove()


def test_a_wall_is_a_bounded_box_and_the_floor_a_grid(server):
  model = mujoco.MjModel.from_xml_string(TWO_BEADS)
  view = SceneView(server, model, np.zeros((1, 3)))
  try:
    wall = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "wall")
    boxes = [
      s
      for s in view._parts.shapes
      if s.kind == "box" and s.category == "geom" and wall in s.ids
    ]
    assert len(boxes) == 1
    i = list(boxes[0].ids).index(wall)
    sx, sy, thick = boxes[0].scale[i]
    assert (sx, sy) == (0.5, 0.2) and 0 < thick <= 0.01  # the plane's size
    assert np.allclose(boxes[0].rgb[i], (51, 153, 230), atol=1)  # its rgba
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    (pos,) = [
      i.pos
      for i in drawn_items(model, data.xpos, data.xquat)
      if i.category == "geom" and i.id == wall
    ]
    assert np.allclose(pos, data.geom_xpos[wall])
    assert view._floor is not None  # the floor: a grid, not a part
    floor = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "floor")
    geoms = [s for s in view._parts.shapes if s.category == "geom"]
    assert not any(floor in s.ids for s in geoms)
  finally:
    view.remove()


def test_an_infinite_wall_on_a_body_is_bounded():
  model = mujoco.MjModel.from_xml_string(
    """<mujoco><worldbody>
    <body pos="1 0 0"><geom type="plane" size="0 0.3 0.1" zaxis="-1 0 0"/>
    </body><body><freejoint/><geom type="sphere" size="0.1"/></body>
    </worldbody></mujoco>"""
  )
  parts = Parts(model, plane_bound=0.7)
  (box,) = [s for s in parts.shapes if s.kind == "box"]
  assert np.allclose(box.scale[0][:2], (0.7, 0.3))


def test_sites_and_tendons_hide_and_show_again(server):
  model = mujoco.MjModel.from_xml_string(TWO_BEADS)
  scene = BatchedScene(model, 3)
  poses = scene.poses_from_qpos(np.tile([0.1, 0.2, 0.0], (3, 1)))
  view = SceneView(server, model, scene.offsets)
  try:
    view.show(poses.xpos, poses.xquat)
    sites = [
      i for i, s in enumerate(view._parts.shapes) if s.category == "site"
    ]
    # two visible sites (a sphere and a box); group 4 and alpha 0 not drawn
    assert sum(view._parts.shapes[i].num_parts for i in sites) == 2

    def shown(i):
      return sum(
        len(h.batched_positions) for h in view._meshes.handles[i] if h.visible
      )

    assert all(shown(i) == 3 * view._parts.shapes[i].num_parts for i in sites)
    view.set_visible("site", False)
    view.set_visible("tendon", False)
    view.show(poses.xpos, poses.xquat)
    assert all(shown(i) == 0 for i in sites)
    assert not view._tubes.handle.visible
    items = view.drawn(0)
    assert {i.category for i in items} == {"geom"}
    view.set_visible("site", True)
    view.set_visible("tendon", True)
    view.show(poses.xpos, poses.xquat)
    assert all(shown(i) == 3 * view._parts.shapes[i].num_parts for i in sites)
    assert view._tubes.handle.visible
    assert {i.category for i in view.drawn(2)} == {"geom", "site", "tendon"}
  finally:
    view.remove()


def test_page_checkboxes_hide_sites_and_tendons_without_a_rebuild(server):
  model = mujoco.MjModel.from_xml_string(TWO_BEADS)
  scene = BatchedScene(model, 2)
  rest = scene.rest_poses()
  page = Page(server, stream=None, timeline=types.SimpleNamespace())
  page.build(model, scene.offsets, rest.xpos, rest.xquat)
  view = page.view
  assert view is not None and page.panels.sites.value
  page.set_drawn("site", False)
  assert page.view is view  # the same scene, its site meshes hidden
  assert not page.panels.sites.value and not view.visible("site")
  page.set_drawn("tendon", False)
  assert not page.panels.tendons.value
  assert not view._tubes.handle.visible
  page.build(model, scene.offsets, rest.xpos, rest.xquat)  # kept on rebuild
  assert not page.view.visible("site") and not page.view.visible("tendon")
  page.set_drawn("site", True)
  assert page.view.visible("site") and page.panels.sites.value
  with pytest.raises(ValueError):
    page.set_drawn("joint", True)
  # a click on the Tendons box in a browser
  box = page.panels.tendons
  box.value = True
  for callback in box._impl.update_cb:
    callback(types.SimpleNamespace(client=object(), target=box))
  assert page.view.visible("tendon") and page.view._tubes.handle.visible


TEXTURED = """
<mujoco>
  <asset>
    <texture name="checks" type="2d" builtin="checker" width="64" height="64"
             rgb1="1 1 1" rgb2="0 0 0"/>
    <material name="table" texture="checks" texrepeat="3 2"/>
    <texture name="dice" type="cube" builtin="flat" width="16" height="16"
             rgb1="0.9 0.2 0.1" rgb2="0.9 0.2 0.1"/>
    <material name="cubed" texture="dice"/>
  </asset>
  <worldbody>
    <body name="tray"><joint type="slide" axis="0 0 1"/>
      <geom name="top" type="box" size="0.6 0.4 0.02" material="table"/>
    </body>
    <geom name="plain" type="box" size="0.1 0.1 0.1" pos="0 0 1"/>
    <body pos="0 0 0.5"><freejoint/>
      <geom name="die" type="box" size="0.05 0.05 0.05" material="cubed"/>
    </body>
  </worldbody>
</mujoco>
"""


def test_a_textured_box_keeps_its_texture(server):
  model = mujoco.MjModel.from_xml_string(TEXTURED)
  parts = Parts(model)
  top = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "top")
  (shape,) = [s for s in parts.shapes if s.kind == f"geom:{top}"]
  mesh = shape.mesh
  assert isinstance(mesh.visual, trimesh.visual.TextureVisuals)
  image = mesh.visual.material.baseColorTexture
  assert image.size == (64, 64)
  # the box's size, in metres, and the texture repeated 3 x 2 times across
  # its top (as MuJoCo maps a 2D texture onto a box: along its z axis)
  assert np.allclose(mesh.bounds, [[-0.6, -0.4, -0.02], [0.6, 0.4, 0.02]])
  uv = mesh.visual.uv
  assert np.isclose(np.ptp(uv[:, 0]), 3.0) and np.isclose(np.ptp(uv[:, 1]), 2.0)
  assert b"image/png" in mesh.export(file_type="glb")
  # a cube texture: the faces take its colour; untextured boxes stay
  # instances of the shared unit box
  die = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "die")
  (cubed,) = [s for s in parts.shapes if s.kind == f"geom:{die}"]
  colours = np.asarray(cubed.mesh.visual.vertex_colors)[:, :3]
  assert np.allclose(colours, [230, 51, 26], atol=2)
  (box,) = [s for s in parts.shapes if s.kind == "box"]
  plain = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "plain")
  assert list(box.ids) == [plain]
  view = SceneView(server, model, np.zeros((2, 3)))
  try:
    (i,) = [
      j for j, s in enumerate(view._parts.shapes) if s.kind == f"geom:{top}"
    ]
    assert len(view._meshes.handles[i]) == 1  # one batched mesh, both envs
  finally:
    view.remove()


WRAPS = """
<mujoco>
  <worldbody>
    <body name="a" pos="0 0 1">
      <joint type="ball"/>
      <geom type="capsule" size="0.05" fromto="0 0 0 0.5 0 0"/>
      <site name="s0" pos="0.5 0 0.1"/>
      <geom name="drum" type="cylinder" size="0.1 0.05" pos="0.5 0.2 0"/>
      <site name="side" pos="0.58 0.4 0.03"/>
      <body pos="0.5 0 0">
        <joint type="hinge" axis="0 1 0"/>
        <geom type="capsule" size="0.04" fromto="0 0 0 0.5 0 0"/>
        <site name="s1" pos="0.5 0.3 0.1"/>
        <geom name="ball" type="sphere" size="0.08" pos="0.3 0 0"/>
        <site name="s2" pos="0.5 0 -0.1"/>
      </body>
    </body>
  </worldbody>
  <tendon>
    <spatial width="0.01">
      <site site="s0"/><geom geom="drum" sidesite="side"/><site site="s1"/>
      <pulley divisor="2"/>
      <site site="s0"/><geom geom="ball" sidesite="side"/><site site="s2"/>
    </spatial>
  </tendon>
</mujoco>
"""


def test_tendons_wrapping_geoms_are_drawn_where_mujoco_draws_them():
  model = mujoco.MjModel.from_xml_string(WRAPS)
  tendons = TendonPaths(model)
  data = mujoco.MjData(model)
  rng = np.random.default_rng(0)
  arcs = 0
  for _ in range(6):
    data.qpos[:4] = rng.normal(size=4)
    data.qpos[4] = rng.normal()
    mujoco.mj_normalizeQuat(model, data.qpos)
    mujoco.mj_forward(model, data)
    theirs = mujoco_draws(model, data)
    assert_same_places(
      page_draws(model, data.xpos, data.xquat, tendons=tendons), theirs
    )
    arcs += len(theirs["tendon"]) > 5  # pieces of arcs over the geoms
  assert arcs


def test_a_stiff_slack_string_hangs_and_a_taut_one_is_straight():
  model = mujoco.MjModel.from_xml_string(
    TWO_BEADS.replace(
      'width="0.004"', 'width="0.004" limited="true" range="0 1"'
    )
  )
  tendons = TendonPaths(model)
  data = mujoco.MjData(model)
  for qpos, pieces in (([0.0, 0.0, 0.0], 28), ([-0.5, 0.0, 0.0], 1)):
    data.qpos[:] = qpos
    mujoco.mj_forward(model, data)
    theirs = mujoco_draws(model, data)
    assert len(theirs["tendon"]) == pieces
    assert_same_places(
      page_draws(model, data.xpos, data.xquat, tendons=tendons), theirs
    )
