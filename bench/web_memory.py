"""Memory over a long live stream: does the server or the page grow?

    python bench/web_memory.py [--envs 16] [--minutes 10] [--every 20]

A WebViewerBatched of brax's ant, fed by the stand-in trainer (mujoco steps
the ants; no JAX) with chunks and progress metrics arriving as in training,
is watched by headless Chromium (Debian's) for ``--minutes``. Every
``--every`` seconds it samples the server process's resident memory (RSS,
from /proc) and the page's JS heap in use (Chrome DevTools
``Performance.getMetrics``, after a forced GC, so garbage not yet collected
does not count). Prints the samples, the growth from the first sample after
warm-up to the last, and the growth per hour of a least-squares line through
the warm samples.
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
from braxviewer.testing import chromium
from braxviewer.testing.synthetic import SyntheticStream


def rss_mb() -> float:
  with open("/proc/self/status") as f:
    for line in f:
      if line.startswith("VmRSS:"):
        return int(line.split()[1]) / 1024.0
  return float("nan")


def js_heap_mb(cdp) -> float:
  cdp.send("HeapProfiler.collectGarbage")
  metrics = {
    m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]
  }
  return metrics["JSHeapUsedSize"] / 2**20


def slope_per_hour(t, y) -> float:
  if len(t) < 2:
    return float("nan")
  return float(np.polyfit(np.asarray(t) / 3600.0, np.asarray(y), 1)[0])


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--envs", type=int, default=16)
  p.add_argument("--minutes", type=float, default=10.0)
  p.add_argument("--every", type=float, default=20.0, help="seconds")
  p.add_argument("--warmup", type=float, default=60.0, help="seconds")
  p.add_argument("--chromium", default=chromium.executable())
  args = p.parse_args()

  xml = os.path.join(os.path.dirname(brax.__file__), "envs/assets/ant.xml")
  model = mujoco.MjModel.from_xml_path(xml)
  viewer = WebViewerBatched(num_envs=args.envs, port=0)
  viewer.run()
  viewer.init(model)
  stream = SyntheticStream(
    viewer,
    model,
    chunk_length=40,
    frame_skip=5,
    chunks_per_s=2.0,
    progress_every=2,
  )
  stream.start()
  print(
    f"machine: {platform.machine()}, {os.cpu_count()} CPUs; {args.envs}"
    f" ants, {args.minutes:g} min, sample every {args.every:g} s"
  )
  samples = []  # (t, rss MB, heap MB, frames shown, chunks)
  with sync_playwright() as pw:
    browser = chromium.launch(pw, args.chromium)
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    cdp = page.context.new_cdp_session(page)
    cdp.send("Performance.enable")
    try:
      page.goto(viewer.url)
      page.wait_for_selector("canvas", timeout=60000)
      t0 = time.monotonic()
      end = t0 + args.minutes * 60.0
      print("   t s   server RSS MB   page JS heap MB   frames shown   chunks")
      while True:
        now = time.monotonic() - t0
        sample = (
          now,
          rss_mb(),
          js_heap_mb(cdp),
          viewer.stats()["frames_shown"],
          stream.chunks_sent,
        )
        samples.append(sample)
        print(
          f"{sample[0]:6.0f} {sample[1]:14.1f} {sample[2]:17.1f}"
          f" {sample[3]:14d} {sample[4]:8d}",
          flush=True,
        )
        if time.monotonic() + args.every > end:
          break
        time.sleep(args.every)
    finally:
      page.close()
      browser.close()
      stream.stop()
      viewer.close()
  warm = [s for s in samples if s[0] >= args.warmup] or samples
  t = [s[0] for s in warm]
  for name, col in (("server RSS", 1), ("page JS heap", 2)):
    y = [s[col] for s in warm]
    print(
      f"{name}: {y[0]:.1f} MB at {t[0]:.0f} s -> {y[-1]:.1f} MB at"
      f" {t[-1]:.0f} s ({y[-1] - y[0]:+.1f} MB); fitted"
      f" {slope_per_hour(t, y):+.1f} MB/hour"
    )
  if stream.error is not None:
    raise SystemExit(f"the stand-in trainer failed: {stream.error!r}")


if __name__ == "__main__":
  main()
