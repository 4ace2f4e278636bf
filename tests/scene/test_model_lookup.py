"""Where an env keeps its MuJoCo model, and every source viewer.init takes."""

from __future__ import annotations

import mujoco
import pytest

from braxviewer.scene.lookup import find_mj_model, resolve_model
from braxviewer.testing.synthetic import PUCK_XML


class _BraxLike:
  class sys:  # noqa: N801
    mj_model = mujoco.MjModel.from_xml_string(PUCK_XML)


class _PlaygroundLike:
  mj_model = mujoco.MjModel.from_xml_string(PUCK_XML)


def test_resolve_model_sources(tmp_path):
  path = tmp_path / "m.xml"
  path.write_text(PUCK_XML)
  for source in (
    _BraxLike(),
    _PlaygroundLike(),
    PUCK_XML,
    str(path),
    path,
    _PlaygroundLike.mj_model,
  ):
    assert resolve_model(source).nq == 8
  with pytest.raises(TypeError, match="mj_model"):
    resolve_model(object())
  assert find_mj_model(object()) is None
  with pytest.raises(TypeError, match="neither MJCF XML nor an existing"):
    resolve_model("no/such/file.xml")
