"""The original API's tiled models (concatenate_envs_xml): recognised and
mapped back to the single env, or drawn as one scene filled with the first
streamed envs."""

from __future__ import annotations

import mujoco
import numpy as np

from braxviewer import WebViewerBatched
from braxviewer.scene import tiled
from braxviewer.scene.batched import BatchedScene
from braxviewer.testing.synthetic import PUCK_XML
from braxviewer.web.errors import ViewerWarning


def test_tiled_model_from_concatenate_envs_xml_maps_back():
  xml = WebViewerBatched.concatenate_envs_xml(
    PUCK_XML, 4, (2, 2, 1), (1.0, 1.0, 1.0)
  )
  big = mujoco.MjModel.from_xml_string(xml)
  single, copies = tiled.untile(big)
  assert copies == 4 and single.nq == 8
  assert tiled.prefixed_copies(big) == 4
  assert tiled.copies_by_width(big, 8) == 4
  assert tiled.copies_by_width(single, 8) == 1


def test_an_env_from_the_original_concatenated_xml_is_accepted_quietly(
  recwarn,
):
  xml = WebViewerBatched.concatenate_envs_xml(
    PUCK_XML, 4, (2, 2, 1), (1.0, 1.0, 1.0)
  )
  with WebViewerBatched(
    grid_dims=(2, 2, 1), env_offset=(1.0, 1.0, 1.0), port=0
  ) as v:
    v.init(xml)
    assert v.page.view.model.nq == 8  # the single env, on a grid of 4
    assert v.page.num_envs == 4
  assert [w for w in recwarn if w.category is ViewerWarning] == []


def test_a_tiled_scene_keeps_copies_that_are_not_streamed_at_rest():
  xml = WebViewerBatched.concatenate_envs_xml(
    PUCK_XML, 3, (3, 1, 1), (1.0, 1.0, 1.0)
  )
  big = mujoco.MjModel.from_xml_string(xml)
  poser = tiled.TiledPoses(BatchedScene(big, 1), 3)
  rest = poser.rest_poses()
  qpos = np.full((2, 3, 8), np.nan)  # 2 frames; only env 0 streamed
  qpos[:, 0] = mujoco.MjModel.from_xml_string(PUCK_XML).qpos0 + 0.1
  poses = poser.poses_from_qpos(qpos)
  assert poses.valid.all()  # one scene, all of it drawable
  per = (big.nbody - 1) // 3  # bodies of one copy (after the world)
  streamed, others = slice(1, 1 + per), slice(1 + per, None)
  for t in range(2):  # copies 1 and 2 stay where they rest; copy 0 moved
    np.testing.assert_allclose(poses.xpos[t, 0, others], rest.xpos[0, others])
    assert not np.allclose(poses.xpos[t, 0, streamed], rest.xpos[0, streamed])
