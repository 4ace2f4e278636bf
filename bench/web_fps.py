"""Frames per second of the web viewer in headless Chromium, and what a frame
costs the server.

    python bench/web_fps.py [--envs 16 64] [--seconds 10] [--fps 60]

For each env count: a WebViewerBatched of brax's ant, fed by a stand-in
trainer (mujoco steps the ants; no JAX, no training) with frames due at
``--fps``. Headless Chromium (Debian's, SwiftShader WebGL) opens the page and
measures, in the page, animation frames per second and scene updates received
per second (websocket messages); the frames that show new poses per second
are the smaller of the two. Server side: frames pushed per second, the time
to pose and send one frame (viser messages), and the kinematics of one frame
(mj_kinematics for all envs), and the triangles the page is asked to draw
(levels of detail chosen for the page's camera). Prints one table row per
env count.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import brax
import mujoco
import numpy as np
from playwright.sync_api import sync_playwright

from braxviewer import WebViewerBatched
from braxviewer.scene.batched import BatchedScene
from braxviewer.testing import chromium
from braxviewer.testing.synthetic import SyntheticStream

RAF = """(seconds) => new Promise(done => {
  let frames = 0; const t0 = performance.now();
  function tick() {
    frames++;
    if (performance.now() - t0 < seconds * 1000) requestAnimationFrame(tick);
    else done(frames / ((performance.now() - t0) / 1000));
  }
  requestAnimationFrame(tick);
})"""
# Counts the animation frames in which WebGL drew something: viser renders
# on demand (after an update or a camera move), so animation frames alone
# say how free the page's main thread is, not how often it draws.
COUNT_DRAWS = """
(() => {
  window.__drawn = false; window.__rendered = 0;
  for (const proto of [WebGL2RenderingContext.prototype,
                       WebGLRenderingContext.prototype]) {
    for (const name of ["drawArrays", "drawElements",
                        "drawArraysInstanced", "drawElementsInstanced"]) {
      const f = proto[name];
      if (!f) continue;
      proto[name] = function (...a) { window.__drawn = true;
                                      return f.apply(this, a); };
    }
  }
  const tick = () => {
    if (window.__drawn) { window.__rendered += 1; window.__drawn = false; }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
})();
"""
RENDERED = "() => window.__rendered"
RENDERER = """() => {
  const gl = document.createElement('canvas').getContext('webgl2');
  const ext = gl && gl.getExtension('WEBGL_debug_renderer_info');
  return ext ? gl.getParameter(ext.UNMASKED_RENDERER_WEBGL) : 'unknown';
}"""


def kinematics_ms(model: mujoco.MjModel, num_envs: int, frames: int = 50):
  scene = BatchedScene(model, num_envs)
  qpos = np.tile(model.qpos0, (frames, num_envs, 1))
  qpos += np.random.default_rng(0).normal(0, 0.05, qpos.shape)
  scene.poses_from_qpos(qpos[:2])
  started = time.perf_counter()
  scene.poses_from_qpos(qpos)
  return 1e3 * (time.perf_counter() - started) / frames


def measure(
  browser,
  model,
  num_envs: int,
  seconds: float,
  fps: float,
  width: int,
  height: int,
  paced: bool = True,
) -> dict:
  viewer = WebViewerBatched(num_envs=num_envs, port=0)
  viewer.run()
  viewer.init(model)
  if not paced:  # as before pacing: every frame due is sent
    viewer.playback._max_fps = lambda: None
  stream = SyntheticStream(
    viewer,
    model,
    chunk_length=40,
    frame_skip=2,
    chunks_per_s=1.0,
    progress_every=4,
  )
  viewer.playback.set_speed((1.0 / fps) / stream.dt)
  stream.start()
  page = browser.new_page(viewport={"width": width, "height": height})
  page.add_init_script(COUNT_DRAWS)
  messages = []
  page.on(
    "websocket",
    lambda ws: ws.on(
      "framereceived", lambda payload: messages.append(time.monotonic())
    ),
  )

  def rendered_per_s(action=None) -> float:
    n0, t0 = page.evaluate(RENDERED), time.monotonic()
    while time.monotonic() - t0 < seconds:
      if action is not None:
        action()
      else:
        time.sleep(0.2)
    return (page.evaluate(RENDERED) - n0) / (time.monotonic() - t0)

  try:
    page.goto(viewer.url)
    page.wait_for_selector("canvas", timeout=60000)
    time.sleep(4.0)  # scene built, first chunks playing
    shown0 = viewer.stats()["frames_shown"]
    t0 = time.monotonic()
    n0 = len(messages)
    raf = page.evaluate(RAF, seconds)
    elapsed = time.monotonic() - t0
    stats = viewer.stats()
    received = (len(messages) - n0) / elapsed
    drawing = rendered_per_s()
    viewer.playback.set_paused(True)  # the same page with nothing arriving
    time.sleep(1.0)
    idle = page.evaluate(RAF, min(seconds, 5.0))
    # what the page can draw: nothing arrives, the camera turns all along
    x, y = width // 3, height // 2
    page.mouse.move(x, y)
    page.mouse.down()
    turn = {"dx": 4}

    def orbit() -> None:
      nonlocal x
      x += turn["dx"]
      if not width // 6 < x < width // 2:
        turn["dx"] = -turn["dx"]
      page.mouse.move(x, y)

    capacity = rendered_per_s(orbit)
    page.mouse.up()
    viewer.playback.set_paused(False)
    return dict(
      paced="yes" if paced else "no",
      envs=num_envs,
      drawn_per_s=drawing,
      capacity=capacity,
      raf_fps=raf,
      idle_fps=idle,
      updates_per_s=received,
      new_frames_per_s=min(raf, received),
      pushed_per_s=(stats["frames_shown"] - shown0) / elapsed,
      update_ms=1e3 * (viewer.stats()["update_s"] or 0.0),
      kinematics_ms=kinematics_ms(model, num_envs),
      triangles=stats["triangles"],
      renderer=page.evaluate(RENDERER),
    )
  finally:
    page.close()
    stream.stop()
    viewer.close()


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--envs", type=int, nargs="+", default=[16, 64])
  p.add_argument("--seconds", type=float, default=10.0)
  p.add_argument(
    "--fps",
    type=float,
    default=60.0,
    help="frames per second the viewer tries to push",
  )
  p.add_argument(
    "--pacing",
    choices=("on", "off", "both"),
    default="both",
    help="send only as many frames as the page draws (both: side by side)",
  )
  p.add_argument("--width", type=int, default=1280)
  p.add_argument("--height", type=int, default=800)
  p.add_argument("--chromium", default=chromium.executable())
  p.add_argument(
    "--chromium-arg",
    action="append",
    default=[],
    help="extra Chromium flag (repeatable)",
  )
  args = p.parse_args()
  xml = os.path.join(os.path.dirname(brax.__file__), "envs/assets/ant.xml")
  model = mujoco.MjModel.from_xml_path(xml)
  print(
    f"machine: {platform.machine()}, {os.cpu_count()} CPUs,"
    f" load {os.getloadavg()[0]:.1f}; page {args.width}x{args.height},"
    f" frames due at {args.fps:.0f}/s"
  )
  rows = []
  with sync_playwright() as pw:
    browser = chromium.launch(pw, args.chromium, args.chromium_arg)
    modes = {"on": [True], "off": [False], "both": [False, True]}
    for n in args.envs:
      for paced in modes[args.pacing]:
        rows.append(
          measure(
            browser,
            model,
            n,
            args.seconds,
            args.fps,
            args.width,
            args.height,
            paced,
          )
        )
    browser.close()
  print(f"WebGL renderer: {rows[0]['renderer']}")
  print(
    "| paced | ants | page draws/s, streaming | page draws/s, camera turning,"
    " nothing arriving (capacity) | streaming / capacity"
    " | animation frames/s, static | animation frames/s, streaming"
    " | updates received/s | new frames shown/s"
    " | frames pushed/s (server) | server ms/frame (pose+send)"
    " | kinematics ms/frame | triangles drawn |"
  )
  print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
  for r in rows:
    print(
      f"| {r['paced']} | {r['envs']} | {r['drawn_per_s']:.1f} |"
      f" {r['capacity']:.1f} | {r['drawn_per_s'] / max(r['capacity'], 1e-9):.2f}"
      f" | {r['idle_fps']:.1f} | {r['raf_fps']:.1f} |"
      f" {r['updates_per_s']:.1f} |"
      f" {r['new_frames_per_s']:.1f} | {r['pushed_per_s']:.1f} |"
      f" {r['update_ms']:.2f} | {r['kinematics_ms']:.2f} |"
      f" {r['triangles']} |"
    )


if __name__ == "__main__":
  main()
