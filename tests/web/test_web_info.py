"""The env's streamed state.info on the page: values, a chart, command arrows."""

from __future__ import annotations

from types import SimpleNamespace

import mujoco
import numpy as np
import pytest
import viser
from viser.transforms import SO3

from braxviewer.web import commands
from braxviewer.web.page import Page
from braxviewer.web.traces import EnvTraces, info_columns

ROBOT = """
<mujoco>
  <worldbody>
    <geom type="plane" size="5 5 .1"/>
    <body name="robot" pos="0 0 .3">
      <freejoint/>
      <geom type="box" size=".3 .15 .1"/>
    </body>
  </worldbody>
</mujoco>
"""


def test_info_entries_become_named_columns():
  cols = info_columns("command", np.array([[0.5, -0.1, 0.2]] * 2))
  assert list(cols) == ["command vx", "command vy", "command wz"]
  np.testing.assert_allclose(cols["command wz"], [0.2, 0.2])
  assert list(info_columns("level", np.array([1.0, 2.0]))) == ["level"]
  assert list(info_columns("air", np.zeros((2, 4)))) == [
    "air[0]",
    "air[1]",
    "air[2]",
    "air[3]",
  ]


def test_traces_keep_each_envs_info_and_its_newest_values():
  traces = EnvTraces(2, window=5)
  for t in range(7):
    traces.push(
      float(t),
      np.zeros(2),
      np.array([t == 3, False]),
      {},
      {
        "command": np.array([[t, 0.0, 0.0], [-t, 1.0, 0.0]]),
        "level": np.ones(2),
      },
    )
  labels, data = traces.info_series(1)
  assert labels == ("command vx", "command vy", "command wz", "level", "reset")
  np.testing.assert_allclose(data[0], [2, 3, 4, 5, 6])  # the last 5 frames
  np.testing.assert_allclose(data[1], [-2, -3, -4, -5, -6])
  assert traces.latest_info(0)["command vx"] == 6.0
  assert traces.info_series(0)[1][-1].tolist() == [0, 1, 0, 0, 0]  # reset
  assert EnvTraces(2).info_series(0) == ((), ())


def test_command_arrow_points_where_the_robot_is_asked_to_go():
  # forward for a robot facing +y: the arrow points along +y
  wxyz, scale = commands.arrow_poses(
    np.array([[1.5, 0.0, 0.0]]), np.array([np.pi / 2]), size=0.4
  )
  tip = SO3(wxyz).apply(np.array([1.0, 0.0, 0.0]))
  np.testing.assert_allclose(tip[0], [0.0, 1.0, 0.0], atol=1e-12)
  assert scale[0, 0] == pytest.approx(1.5 * 0.4)  # longer when faster
  # sideways (vy) for a robot facing +x: the arrow points along +y
  wxyz, _ = commands.arrow_poses(np.array([[0.0, 0.7]]), np.zeros(1), 0.4)
  tip = SO3(wxyz).apply(np.array([1.0, 0.0, 0.0]))
  np.testing.assert_allclose(tip[0], [0.0, 1.0, 0.0], atol=1e-12)
  # standing still, or no command: no arrow
  _, scale = commands.arrow_poses(
    np.array([[0.0, 0.0, 0.5], [np.nan, 0.0, 0.0]]), np.zeros(2), 0.4
  )
  assert not scale.any()


def test_heading_is_the_yaw_of_a_turned_robot():
  quat = SO3.from_z_radians(0.8).multiply(SO3.from_x_radians(0.3)).wxyz
  assert commands.heading(quat[None])[0] == pytest.approx(0.8)


@pytest.fixture
def page():
  server = viser.ViserServer(port=0, verbose=False)
  timeline = SimpleNamespace()
  pg = Page(server, stream=None, timeline=timeline, num_envs=3)  # type: ignore[arg-type]
  yield pg
  server.stop()


def _poses(model, yaw):
  data = mujoco.MjData(model)
  xpos, xquat = [], []
  for i, a in enumerate(yaw):
    data.qpos[:3] = [2.0 * i, 0.0, 0.3]
    data.qpos[3:7] = SO3.from_z_radians(a).wxyz
    mujoco.mj_kinematics(model, data)
    xpos.append(data.xpos.copy())
    xquat.append(data.xquat.copy())
  return np.array(xpos), np.array(xquat)


def test_page_draws_a_command_arrow_over_each_robot_and_shows_the_info(page):
  model = mujoco.MjModel.from_xml_string(ROBOT)
  xpos, xquat = _poses(model, [0.0, np.pi / 2, np.pi])
  page.build(model, np.zeros((3, 3)), xpos, xquat)
  assert page.command_arrows is None  # no command streamed: no arrows
  command = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.3]])
  page.show(xpos, xquat, np.ones(3, bool), np.zeros(3), command=command)
  arrows = page.command_arrows
  assert arrows is not None
  # envs 0 and 1 asked to walk: arrows as long as the command is fast;
  # env 2 asked to turn on the spot: none
  assert arrows.shown_scale[:2, 0] == pytest.approx([arrows.size] * 2)
  assert arrows.shown_scale[2, 0] == 0.0
  handle = arrows._handle
  tips = SO3(np.asarray(handle.batched_wxyzs)).apply(np.array([1.0, 0, 0]))
  np.testing.assert_allclose(tips[0], [1, 0, 0], atol=1e-6)  # robot 0 faces +x
  np.testing.assert_allclose(tips[1], [0, 1, 0], atol=1e-6)  # robot 1 faces +y
  above = np.asarray(handle.batched_positions)
  np.testing.assert_allclose(above[:, :2], xpos[:, 1, :2], atol=1e-6)
  assert np.all(above[:, 2] > xpos[:, 1, 2])  # over the robots
  # the info reaches the env panel: values and a chart
  for t in range(3):
    page.trace(float(t), np.zeros(3), np.zeros(3), {}, {"command": command})
  page.select_env(0)
  assert page.panels.info_folder.visible
  assert "command vx +1" in page.panels.info_values.content
  # only the selected env: the others' arrows go
  page.set_show_only(True)
  page.show(xpos, xquat, np.ones(3, bool), np.zeros(3), command=command)
  assert arrows.shown_scale[1, 0] == 0.0 and arrows.shown_scale[0, 0] > 0
