"""Goals drawn where the env put them, in real headless Chromium.

A reacher-like model whose target is a mocap body: the env moves it at
reset. The stream carries each env's mocap state; the page must draw every
env's goal there, not at the model's default pose.
"""

from __future__ import annotations

import io
from pathlib import Path
import tempfile
import time

import mujoco
import numpy as np
from PIL import Image
import pytest
from scipy import ndimage

from braxviewer import WebViewerBatched
from braxviewer.core.frames import FrameChunk
from braxviewer.testing.factories import stream_info

N = 4
GOAL_XML = """
<mujoco>
  <worldbody>
    <light pos="0 0 3"/>
    <geom type="plane" size="1 1 .1" rgba=".8 .8 .8 1"/>
    <body name="arm" pos="0 0 .05">
      <joint name="hinge" type="hinge" axis="0 0 1"/>
      <geom type="capsule" fromto="0 0 0 .15 0 0" size=".02" rgba=".2 .2 .9 1"/>
    </body>
    <body name="goal" mocap="true" pos="0 -.3 .05">
      <geom type="sphere" size=".05" rgba=".1 .8 .1 1" contype="0"
            conaffinity="0"/>
    </body>
  </worldbody>
</mujoco>
"""


def _green_blobs(pixels: np.ndarray) -> np.ndarray:
  """Centroids (row, col) of the green goal spheres in a screenshot."""
  rgb = pixels.astype(int)
  green = (rgb[..., 1] > 110) & (
    rgb[..., 1] - np.maximum(rgb[..., 0], rgb[..., 2]) > 50
  )
  labels, count = ndimage.label(green)
  areas = ndimage.sum(green, labels, range(1, count + 1))
  keep = [i + 1 for i, a in enumerate(areas) if a >= 20]
  return np.array(ndimage.center_of_mass(green, labels, keep)).reshape(-1, 2)


def _view_pixels(page) -> np.ndarray:
  """The 3D view left of the control panel, above the axes gizmo, with
  the browser's software-rendering notice (top left) blanked."""
  png = page.screenshot(clip={"x": 0, "y": 0, "width": 850, "height": 690})
  pixels = np.array(Image.open(io.BytesIO(png)).convert("RGB"))
  pixels[:160, :330] = 255
  return pixels


def _chunk(seq: int, model, goal_x: float) -> FrameChunk:
  t = 5
  mocap_pos = np.zeros((t, N, 1, 3), np.float32)
  mocap_pos[..., 0, 0] = goal_x
  mocap_pos[..., 0, 2] = 0.05
  mocap_quat = np.zeros((t, N, 1, 4), np.float32)
  mocap_quat[..., 0] = 1.0
  zeros = np.zeros((t, N), np.float32)
  return FrameChunk(
    seq=seq,
    source="train",
    env_steps=(seq + 1) * t * N,
    dt=0.05,
    reward=zeros,
    done=zeros,
    truncation=zeros,
    metrics={},
    wall_time=time.time(),
    qpos=np.zeros((t, N, model.nq), np.float32),
    mocap_pos=mocap_pos,
    mocap_quat=mocap_quat,
  )


@pytest.fixture
def viewer():
  viewer = WebViewerBatched(num_envs=N, port=0, env_offset=(1.0, 1.0, 1.0))
  viewer.run()
  yield viewer
  viewer.close()


def test_each_envs_goal_is_drawn_where_the_env_moved_it(
  viewer, page, open_page, wait_until
):
  model = mujoco.MjModel.from_xml_string(GOAL_XML)
  viewer.init(model)
  viewer.on_stream_start(stream_info(N, nq=model.nq, dt=0.05, chunk_length=5))
  open_page(page, viewer.url)

  def aim() -> None:
    """Straight down on the 2 x 2 grid, from high enough to see every cell
    (again at each look: the page's own camera preset may land after it on
    a loaded machine)."""
    for client in viewer.page._server.get_clients().values():
      client.camera.position = (0.5, 0.2, 4.0)
      client.camera.look_at = (0.5, 0.5, 0.0)

  aim()
  time.sleep(1.0)
  seq = 0

  def goals() -> np.ndarray:
    found = _green_blobs(_view_pixels(page))
    return found[np.lexsort(found.T)] if len(found) == N else found

  def moved_from(before: np.ndarray) -> bool:
    return (
      len(before) == N
      and len(now := goals()) == N
      and bool(np.all(np.linalg.norm(now - before, axis=1) > 10))
    )

  def feed_until_moved(before: np.ndarray, goal_x: float) -> np.ndarray:
    nonlocal seq

    def moved() -> bool:
      nonlocal seq
      viewer.on_chunk(_chunk(seq, model, goal_x))
      seq += 1
      return moved_from(before)

    assert wait_until(moved, timeout=30), "the goals were not drawn moved"
    time.sleep(0.5)
    return goals()

  def all_goals_seen() -> bool:
    aim()
    return len(goals()) == N

  if not wait_until(all_goals_seen, timeout=60):
    shot = Path(tempfile.gettempdir()) / "braxviewer_goals_failure.png"
    page.screenshot(path=str(shot))
    pytest.fail(f"{len(goals())} of {N} goals seen on the page; see {shot}")
  default = goals()  # the model's own goal pose (0, -0.3): before any chunk
  right = feed_until_moved(default, 0.35)
  left = feed_until_moved(right, -0.35)
  # every env's goal moved the same way by the same distance on screen,
  # about the 0.7 m the env moved it (a grid cell is 1 m)
  shift = right - left
  length = np.linalg.norm(shift, axis=1)
  assert length.min() > 0.7 * length.max()
  cosine = (shift @ shift[0]) / (length * length[0])
  assert cosine.min() > 0.95
  spacing = np.sort(
    np.linalg.norm(right[:, None] - right[None], axis=-1).ravel()
  )[N]  # nearest neighbours: one grid cell
  assert 0.4 * spacing < length.mean() < 1.0 * spacing
