"""How fast `insitu view` starts and changes cycle, measured; prints JSON.

    python benchmarks/viewer_bench.py [--size 64] [--cycles 6] [--ranks 2] [--no-browser] > viewer.json

Builds a demo cache (a moving blob, ``--ranks`` writer ranks, real fits), then:

* ``startup_s``: launching ``python -m insitu.cli.view CACHE`` until it prints the
  URL it serves (imports, opening the cache, decoding and rendering the first
  cycle, the web server listening);
* ``cycle_change_cold_s``: one cycle change in the viewer's own code path,
  decoding (no prefetch) + updating both VTK scenes + rendering them offscreen
  + the quality plot (median over the cycles; ``decode_s`` is the decoding
  part alone);
* ``cycle_change_prefetched_s``: the same when the background prefetch already
  decoded the cycle (what scrubbing forward costs);
* with headless Chromium (skipped with ``--no-browser`` or when none is found):
  ``page_first_image_s`` (page requested until the volume shows) and
  ``cycle_change_browser_s`` (slider key press until the page shows the new
  cycle's image, median), everything included: websocket, JPEG, browser.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing


def in_process(path: Path, cycles: int) -> dict:
    """Cycle changes through ViewerApp's synchronous path (the one the page's handlers take, minus the network)."""
    from insitu.viewer.app import ViewerApp
    from insitu.viewer.data import CacheView

    out: dict = {}
    cold_view = CacheView(path, prefetch_ahead=0)
    app = ViewerApp(cold_view, poll_s=0, server_name="bench-cold")
    decode, change = [], []
    for i in range(1, cycles):
        t0 = time.perf_counter()
        cold_view.grid("energy", cold_view.cycles("energy")[i])
        decode.append(time.perf_counter() - t0)
        cold_view._grids.clear()  # noqa: SLF001 - measure the full path below, decoding included
        change.append(app.change_cycle_sync(i))
    out["decode_s"] = statistics.median(decode)
    out["cycle_change_cold_s"] = statistics.median(change)
    polls = []
    for _ in range(20):  # what following a live run costs when nothing was committed: one directory listing
        t0 = time.perf_counter()
        assert cold_view.refresh() is False
        polls.append(time.perf_counter() - t0)
    out["poll_unchanged_s"] = statistics.median(polls)
    cold_view.close()

    warm_view = CacheView(path, prefetch_ahead=3)
    app = ViewerApp(warm_view, poll_s=0, server_name="bench-warm")
    app.change_cycle_sync(0)  # the viewer opens at the newest cycle: go to the first, then step forward
    warm = []
    for i in range(1, cycles):
        warm_view.wait_idle()  # the user looked at the previous cycle long enough for the prefetch to finish
        assert warm_view.cached("energy", warm_view.cycles("energy")[i])
        warm.append(app.change_cycle_sync(i))
    out["cycle_change_prefetched_s"] = statistics.median(warm)
    out["render_size"] = list(app.volume.window.GetSize())
    warm_view.close()
    return out


def in_browser(path: Path, cycles: int, log: Path) -> dict:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from tests.support.browser import (ViewerProcess, coloured_fraction, find_browser, headless_chrome, shot,
                                       wait_for)

    found = find_browser()
    out: dict = {}
    with ViewerProcess(path, log, "--poll", "0") as server:
        out["startup_s"] = server.startup_s
        if found is None:
            out["browser"] = "none found"
            return out
        driver = headless_chrome(*found)
        try:
            t0 = time.perf_counter()
            driver.get(server.url)
            wait_for(lambda: coloured_fraction(shot(driver, "volume-view")) > 0.01, 60, "the first image")
            out["page_first_image_s"] = time.perf_counter() - t0
            label = lambda: driver.find_element(By.ID, "cycle-label").text  # noqa: E731
            thumb = driver.find_element(By.CSS_SELECTOR, "#cycle-slider .v-slider-thumb")
            thumb.click()
            times = []
            names = [int(c) for c in json.loads(os.environ.get("_BENCH_CYCLES", "[]"))]
            thumb.send_keys(Keys.HOME)  # the page opens at the newest cycle; step forward from the first
            wait_for(lambda: label() == f"cycle {names[0]}", 30, "the first cycle's label", interval=0.02)
            for i in range(1, cycles):
                before = shot(driver, "volume-view")
                t0 = time.perf_counter()
                thumb.send_keys(Keys.ARROW_RIGHT)
                wait_for(lambda: label() == f"cycle {names[i]}", 30, "the new cycle's label", interval=0.02)
                wait_for(lambda: (shot(driver, "volume-view") != before).any(), 30, "the new image", interval=0.02)
                times.append(time.perf_counter() - t0)
            out["cycle_change_browser_s"] = statistics.median(times)
        finally:
            driver.quit()
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=64, help="grid size per axis (default 64)")
    p.add_argument("--cycles", type=int, default=6, help="cycles in the cache (default 6)")
    p.add_argument("--ranks", type=int, default=2, help="writer ranks (default 2)")
    p.add_argument("--no-browser", action="store_true", help="skip the headless Chromium figures")
    a = p.parse_args()

    from insitu.viewer.sample import make_sample_cache

    with tempfile.TemporaryDirectory(prefix="viewer-bench-") as tmp:
        path = Path(tmp) / "bench.cache"
        names = [10 * i for i in range(a.cycles)]
        t0 = time.perf_counter()
        make_sample_cache(path, shape=(a.size,) * 3, cycles=names, ranks=a.ranks, max_steps=100)
        result: dict = {"grid": [a.size] * 3, "cycles": a.cycles, "writer_ranks": a.ranks,
                        "build_cache_s": time.perf_counter() - t0, "cpus": os.cpu_count(),
                        "machine": platform.machine()}
        os.environ["_BENCH_CYCLES"] = json.dumps(names)
        if a.no_browser:
            from tests.support.browser import ViewerProcess

            with ViewerProcess(path, Path(tmp) / "server.log", "--poll", "0") as server:
                result["startup_s"] = server.startup_s
        else:
            result.update(in_browser(path, a.cycles, Path(tmp) / "server.log"))
        result.update(in_process(path, a.cycles))
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
