"""Screenshot of velocity commands and the state.info panel, for the docs.

    python tools/screenshot_commands.py --out docs/img/web_commands.png

No Playground joystick env loads without the Menagerie robots, so chunks
with a ``command`` and ``feet_air_time`` in ``info`` are made here: nine
box "quadrupeds" walk and turn as commanded. This is tooling: the viewer
never imports it.
"""

from __future__ import annotations

import argparse
import time
from typing import List, Optional

import mujoco
import numpy as np
from viser.transforms import SO3

from braxviewer import WebViewerBatched
from braxviewer.core.frames import FrameChunk
from braxviewer.core.protocol import StreamInfo
from braxviewer.testing import chromium

_LEG = (
  '<body pos="{x} {y} -.06"><joint type="hinge" axis="0 1 0"/>'
  '<geom type="capsule" fromto="0 0 0 0 0 -.25" size=".03"'
  ' rgba=".2 .2 .2 1"/></body>'
)
ROBOT_XML = f"""
<mujoco>
  <worldbody>
    <light pos="0 0 4" dir="0 0 -1" directional="true"/>
    <geom type="plane" size="0 0 1" rgba=".85 .85 .85 1"/>
    <body name="torso" pos="0 0 .35">
      <freejoint/>
      <geom type="box" size=".25 .12 .06" rgba=".85 .55 .2 1"/>
      <geom type="sphere" pos=".27 0 .04" size=".06" rgba=".3 .3 .8 1"/>
      {"".join(_LEG.format(x=x, y=y) for x in (0.18, -0.18) for y in (0.12, -0.12))}
    </body>
  </worldbody>
</mujoco>"""
N, T, DT = 9, 10, 0.05


class Walkers:
  """N robots following their velocity commands, T frames per chunk."""

  def __init__(self, model: mujoco.MjModel, seed: int = 3):
    self.model = model
    rng = np.random.default_rng(seed)
    self.rng = rng
    self.yaw = rng.uniform(-np.pi, np.pi, N)
    self.command = np.c_[
      rng.uniform(-0.2, 0.6, N),
      rng.uniform(-0.3, 0.3, N),
      rng.uniform(-0.4, 0.4, N),
    ]
    self.xy = np.zeros((N, 2))
    self.seq = 0

  def chunk(self) -> FrameChunk:
    qpos = np.zeros((T, N, self.model.nq))
    air = np.zeros((T, N, 4))
    vx, vy, wz = self.command.T
    for t in range(T):
      self.yaw += wz * DT
      c, s = np.cos(self.yaw), np.sin(self.yaw)
      self.xy += np.c_[c * vx - s * vy, s * vx + c * vy] * DT
      qpos[t, :, :2] = self.xy
      qpos[t, :, 2] = 0.35
      qpos[t, :, 3:7] = SO3.from_z_radians(self.yaw).wxyz
      phase = self.seq * 0.5 + t * 0.5 + np.arange(4)
      qpos[t, :, 7:] = 0.4 * np.sin(phase)
      air[t] = 0.3 * np.abs(np.sin(0.6 * phase))
    noise = self.rng.normal(0, 0.05, (2, T, N))
    zeros = np.zeros((T, N), np.float32)
    self.seq += 1
    return FrameChunk(
      seq=self.seq - 1,
      source="train",
      env_steps=self.seq * T * N,
      dt=DT,
      reward=(1.0 + noise[0]).astype(np.float32),
      done=zeros,
      truncation=zeros,
      metrics={"tracking": (0.8 + noise[1]).astype(np.float32)},
      wall_time=time.time(),
      qpos=qpos.astype(np.float32),
      info={
        "command": np.broadcast_to(self.command, (T, N, 3)).astype(np.float32),
        "feet_air_time": air.astype(np.float32),
      },
    )


def main(argv: Optional[List[str]] = None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--out", default="docs/img/web_commands.png")
  p.add_argument("--camera", default=None, help="top, side, front, follow")
  args = p.parse_args(argv)

  from playwright.sync_api import sync_playwright

  model = mujoco.MjModel.from_xml_string(ROBOT_XML)
  walkers = Walkers(model)
  viewer = WebViewerBatched(num_envs=N, port=0)
  viewer.run()
  viewer.init(model)
  viewer.on_stream_start(
    StreamInfo(
      num_envs=N,
      num_train_envs=N,
      envs_per_device=N,
      kind="qpos",
      nq=model.nq,
      num_links=None,
      dt=DT,
      chunk_length=T,
      reward_terms=("tracking",),
      info_keys=("command", "feet_air_time"),
      info_shapes=((3,), (4,)),
    )
  )

  def play(seconds: float) -> None:
    end = time.time() + seconds
    while time.time() < end:
      viewer.on_chunk(walkers.chunk())
      time.sleep(T * DT * 0.9)

  try:
    with sync_playwright() as pw:
      browser = chromium.launch(pw, chromium.executable())
      page = browser.new_page(viewport={"width": 1400, "height": 860})
      page.goto(viewer.url)
      page.wait_for_selector("canvas", timeout=60000)
      try:  # the browser's "software WebGL" notice
        page.locator("#webgl-software-rendering button").click(timeout=3000)
      except Exception:
        pass
      play(2.0)
      page.get_by_role("tab", name="Envs").click()
      if args.camera:
        page.get_by_role("button", name=args.camera, exact=True).click()
      play(2.0)
      page.screenshot(path=args.out)
      print(f"braxviewer: saved {args.out}", flush=True)
      browser.close()
  finally:
    viewer.close()
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
