"""The browser viewer (`insitu view`): data access and prefetch, CLI errors, and the real page in headless Chromium."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from insitu.cache import TemporalCache

from support.cache_common import entry_file_offset
from insitu.viewer.data import CacheView, CycleUnavailable
from support.browser import (INSTALL_HINT, Deadline, ViewerProcess, coloured_fraction, console_errors,
                             drawn_fraction, find_browser, headless_chrome, shot)
from insitu.viewer.sample import make_sample_cache

CYCLES = (0, 10, 20, 30)
BAD_CYCLE = 40  # written like the others, then one of its entries is corrupted


def corrupt_entry(path: Path, cycle: int, rank: int = 0) -> str:
    """Flip one byte of the model bytes of the first entry of ``rank``'s segment of ``cycle``; returns the file name."""
    (seg,) = path.glob(f"r{rank:05d}-c{cycle:010d}-s*.h5")
    offset = entry_file_offset(seg, 0)
    raw = bytearray(seg.read_bytes())
    raw[offset + 10] ^= 0x01
    seg.write_bytes(bytes(raw))
    return seg.name


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """A moving blob on 24^3, written by 2 ranks (z slabs), cycles 0..40; cycle 40 has a corrupt entry."""
    path = tmp_path_factory.mktemp("view") / "run.cache"
    make_sample_cache(path, shape=(24, 24, 24), cycles=(*CYCLES, BAD_CYCLE), ranks=2, max_steps=100)
    corrupt_entry(path, BAD_CYCLE)
    return path


# --- data access: on-demand decoding, prefetch, corrupt cycles, new cycles ---

def test_grids_match_the_cache_and_prefetch_fills_the_lru(cache):
    view = CacheView(cache, prefetch_ahead=2)
    try:
        assert view.fields() == ["energy"] and view.cycles("energy") == [*CYCLES, BAD_CYCLE]
        info = view.info("energy", 10)
        assert info.domains == 2 and info.writer_ranks == (0, 1) and info.time == pytest.approx(0.1)
        assert info.raw_bytes == 4 * 24 ** 3 and info.ratio == pytest.approx(info.raw_bytes / info.stored_bytes)
        assert info.psnr is not None and info.psnr > 10 and info.max_error is not None
        g = view.grid("energy", 0)
        expect = TemporalCache.open(cache).reconstruct("energy", 0)
        assert g.values.shape == (24, 24, 24) and np.array_equal(g.values, expect)
        assert np.isfinite(g.values).all()  # both ranks' slabs are there
        assert view.prefetch("energy", 0) == [10, 20]
        view.wait_idle()
        assert view.cached("energy", 10) and view.cached("energy", 20) and not view.cached("energy", 30)
        n = view.decode_count
        view.grid("energy", 10)  # prefetched: no decoding on the user's path
        assert view.decode_count == n
        assert view.prefetch("energy", 30, direction=-1) == []  # 20 and 10 are decoded already
    finally:
        view.close()


def test_lru_is_bounded(cache):
    view = CacheView(cache, max_grids=2, prefetch_ahead=0)
    try:
        for c in CYCLES:
            view.grid("energy", c)
        assert [view.cached("energy", c) for c in CYCLES] == [False, False, True, True]
    finally:
        view.close()


def test_corrupt_entry_makes_only_its_cycle_unavailable(cache):
    view = CacheView(cache)
    try:
        with pytest.raises(CycleUnavailable, match="CacheCorruptError") as exc:
            view.grid("energy", BAD_CYCLE)
        assert f"cycle {BAD_CYCLE}" in str(exc.value) and "domain 0" in str(exc.value)
        assert "CacheCorruptError" in (view.error("energy", BAD_CYCLE) or "")
        assert view.grid("energy", 30).values.shape == (24, 24, 24)
        # a prefetch that runs into the bad cycle leaves it for the user to see, nothing breaks
        view2 = CacheView(cache)
        view2.prefetch("energy", 30)
        view2.wait_idle()
        with pytest.raises(CycleUnavailable):
            view2.grid("energy", BAD_CYCLE)
        view2.close()
    finally:
        view.close()


def test_refresh_picks_up_cycles_written_later(tmp_path):
    path = tmp_path / "live.cache"
    make_sample_cache(path, shape=(12, 12, 12), cycles=(0, 1), ranks=1, max_steps=10, ratio=2)
    view = CacheView(path)
    try:
        assert view.cycles("energy") == [0, 1]
        assert view.refresh() is False  # nothing new
        make_sample_cache(path, shape=(12, 12, 12), cycles=(2,), ranks=1, max_steps=10, ratio=2)  # the "simulation" goes on
        assert view.refresh() is True and view.cycles("energy") == [0, 1, 2]
        assert view.grid("energy", 2).values.shape == (12, 12, 12)
    finally:
        view.close()


def test_vtk_transfer_functions_match_the_renderers():
    """The viewer's VTK colours and opacities are the renderer's TransferFunction, sampled."""
    from vtkmodules.vtkCommonDataModel import vtkPiecewiseFunction
    from vtkmodules.vtkRenderingCore import vtkColorTransferFunction

    from insitu.viewer.scene import fill_vtk_transfer, transfer_function

    tf = transfer_function("plasma", (0.25, 0.75), 0.5, (0.0, 2.0))
    ctf, pwf = vtkColorTransferFunction(), vtkPiecewiseFunction()
    fill_vtk_transfer(tf, ctf, pwf)
    for v in (0.0, 0.7, 1.3, 2.0):
        assert ctf.GetColor(v) == pytest.approx(tuple(tf.colors(np.array([v]))[0, :3]), abs=0.02)
    assert pwf.GetValue(0.3) == pytest.approx(0.0, abs=1e-6)  # below the opacity range: transparent
    assert pwf.GetValue(1.0) == pytest.approx(0.25, abs=0.01)  # halfway up the ramp
    assert pwf.GetValue(1.8) == pytest.approx(0.5, abs=1e-6)  # above it: the maximum opacity


# --- the command line: bad input gives one line and exit 2, never a traceback ---

def view_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """``insitu view ...`` through its module, as a user would run it (a separate process)."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "insitu.cli.view", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def assert_one_line_error(proc: subprocess.CompletedProcess, *words: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("insitu: error: "), proc.stderr
    for w in words:
        assert w in lines[0], lines[0]


def test_help_explains_the_ssh_tunnel():
    proc = view_cli("--help")
    assert proc.returncode == 0
    assert "ssh -L 8080:localhost:8080 user@node" in proc.stdout and "--port" in proc.stdout


def test_not_a_cache(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    assert_one_line_error(view_cli(str(tmp_path), "--port", "0"), str(tmp_path))
    assert_one_line_error(view_cli(str(tmp_path / "missing"), "--port", "0"), "missing")


def test_empty_cache(tmp_path):
    TemporalCache(tmp_path / "empty.cache").close()
    assert_one_line_error(view_cli(str(tmp_path / "empty.cache"), "--port", "0"), "empty")


def test_unknown_field_and_colormap(cache):
    assert_one_line_error(view_cli(str(cache), "--field", "nope", "--port", "0"), "'nope'", "energy")
    assert_one_line_error(view_cli(str(cache), "--colormap", "nope", "--port", "0"), "colormap")


def test_port_in_use(cache):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        assert_one_line_error(view_cli(str(cache), "--port", str(port)), f"port {port}", "in use")


def test_registered_as_insitu_view(tmp_path, capsys):
    """Through the `insitu` command line."""
    import insitu.cli.command as cli

    assert "view" in cli._SUBCOMMANDS
    assert cli.main(["view", str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err.startswith("insitu: error: ")


# --- the real page in a real browser ---

# One budget for all the waits of a browser test: a loaded machine slows every step (see support.browser.Deadline).
BROWSER_BUDGET_S = 240
PLAY_S = 0.5  # the viewer's default seconds per cycle while playing

@pytest.fixture(scope="module")
def browser():
    found = find_browser()
    if found is None:
        pytest.skip(INSTALL_HINT)
    driver = headless_chrome(*found)
    yield driver
    driver.quit()


@pytest.fixture()
def server(cache, tmp_path):
    # --poll 0: the test alone decides what the page shows
    with ViewerProcess(cache, tmp_path / "server.log", "--poll", "0") as s:
        yield s


@pytest.mark.browser
@pytest.mark.timeout(BROWSER_BUDGET_S + 60)
def test_browser_scrub_and_recolour(cache, server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    deadline = Deadline(BROWSER_BUDGET_S)
    console_errors(browser)  # forget what earlier pages logged
    browser.get(server.url)
    label = lambda: browser.find_element(By.ID, "cycle-label").text  # noqa: E731
    # the page is named after the cache, shows its whole path and opens at the newest cycle (here the corrupt one)
    deadline.until(lambda: label() == f"cycle {BAD_CYCLE}", "the page to open at the newest cycle")
    assert browser.title == "run.cache - insitu view"
    path_box = browser.find_element(By.ID, "cache-path")
    assert path_box.text.replace("\n", "") == str(cache.resolve())
    assert path_box.size["width"] <= browser.find_element(By.ID, "capacity").size["width"] + 1  # wrapped, not cut
    assert "capacity factor" in browser.find_element(By.ID, "capacity").text
    thumb = browser.find_element(By.CSS_SELECTOR, "#cycle-slider .v-slider-thumb")
    thumb.click()
    thumb.send_keys(Keys.HOME)
    deadline.until(lambda: label() == "cycle 0", "the page to show cycle 0")

    # the volume is drawn: coloured pixels (the outline around it is grey, the background dark)
    deadline.until(lambda: coloured_fraction(shot(browser, "volume-view")) > 0.01, "the volume image")
    vol0, slice0 = shot(browser, "volume-view"), shot(browser, "slice-view")
    Path(tmp_path / "cycle0.png").write_bytes(browser.get_screenshot_as_png())
    assert drawn_fraction(slice0) > 0.2
    assert "2 (written by 2 ranks)" in browser.find_element(By.ID, "cycle-meta").text

    # the colour bar: the colormap's colours (viridis), over the field's value range
    deadline.until(lambda: coloured_fraction(shot(browser, "colorbar")) > 0.2, "the colour bar")

    # one step of the cycle slider: the label and the picture change (the blob moved)
    thumb.send_keys(Keys.ARROW_RIGHT)
    deadline.until(lambda: label() == "cycle 10", "the label to show cycle 10")
    deadline.until(lambda: np.abs(shot(browser, "slice-view").astype(float) - slice0).mean() > 2,
                   "the slice image to change with the cycle")
    vol1 = deadline.until(lambda: (lambda im: im if np.abs(im.astype(float) - vol0).mean() > 0.5 else None)(
        shot(browser, "volume-view")), "the volume image to change with the cycle")
    assert coloured_fraction(vol1) > 0.01
    assert "0.1" in browser.find_element(By.ID, "cycle-meta").text  # its time

    # switch the colormap to gray: the slice's colours become grey levels
    def colourfulness(img: np.ndarray) -> float:
        inner = img[img.shape[0] // 4: -img.shape[0] // 4, img.shape[1] // 4: -img.shape[1] // 4].astype(float)
        return float((inner.max(axis=-1) - inner.min(axis=-1)).mean())

    before = colourfulness(shot(browser, "slice-view"))
    assert before > 20  # viridis
    browser.find_element(By.CSS_SELECTOR, "#colormap-select .v-field").click()
    item = deadline.until(lambda: [e for e in browser.find_elements(By.CSS_SELECTOR, ".v-overlay .v-list-item")
                                   if e.text.strip() == "gray"], "the colormap menu")[0]
    deadline.until(lambda: item.click() or True, "the gray entry to take the click (the menu may still be scrolling)")
    deadline.until(lambda: colourfulness(shot(browser, "slice-view")) < 5, "grey slice colours")
    deadline.until(lambda: coloured_fraction(shot(browser, "colorbar")) < 0.001, "a grey colour bar")
    Path(tmp_path / "gray.png").write_bytes(browser.get_screenshot_as_png())
    # the volume is recoloured too: still drawn, but no coloured pixel left
    vol_gray = deadline.until(lambda: (lambda im: im if coloured_fraction(im) < 0.001 else None)(
        shot(browser, "volume-view")), "a grey volume")
    assert drawn_fraction(vol_gray) > 0.02

    # the corrupt cycle: shown as unavailable with the reason; the page keeps working
    thumb.send_keys(Keys.END)
    deadline.until(lambda: label() == f"cycle {BAD_CYCLE}", "the last cycle")
    alert = deadline.until(lambda: browser.find_element(By.ID, "unavailable").text, "the unavailable notice")
    assert "unavailable" in alert and "CacheCorruptError" in alert
    Path(tmp_path / "unavailable.png").write_bytes(browser.get_screenshot_as_png())
    deadline.until(lambda: drawn_fraction(shot(browser, "volume-view")) < 0.001, "an empty volume view")
    thumb.send_keys(Keys.HOME)
    deadline.until(lambda: label() == "cycle 0", "back to cycle 0")
    deadline.until(lambda: drawn_fraction(shot(browser, "volume-view")) > 0.02, "the volume again")
    assert not browser.find_element(By.ID, "unavailable").is_displayed()

    # play runs through the cycles; pause stops there
    play = browser.find_element(By.ID, "play-button")
    play.click()
    deadline.until(lambda: label() not in ("cycle 0", ""), "play to advance the cycle")
    play.click()
    deadline.until(lambda: "mdi-play" in play.get_attribute("innerHTML"), "the button to show 'play' (paused)")
    # paused: the label settles (a step already under way may still land) and then holds for three play periods
    deadline.steady(label, PLAY_S * 3 + 0.1, "the cycle label after pause")
    # nothing went wrong in the page: no failed request (the /paraview/ session lookup is answered), no exception
    assert console_errors(browser, server.url) == []
    browser.get("about:blank")  # leave the page while its server still runs


@pytest.mark.browser
@pytest.mark.timeout(BROWSER_BUDGET_S + 60)
def test_browser_switches_fields(browser, tmp_path):
    """The field menu: the other field's cycles (at its newest), its colour bar, its picture; no console errors."""
    from selenium.webdriver.common.by import By

    path = tmp_path / "two.cache"
    make_sample_cache(path, shape=(12, 12, 12), cycles=(0, 1, 2), ranks=1, max_steps=10, ratio=2,
                      more_fields=("pressure",))
    make_sample_cache(path, shape=(12, 12, 12), cycles=(3,), ranks=1, max_steps=10, ratio=2)  # energy only
    deadline = Deadline(BROWSER_BUDGET_S)
    console_errors(browser)
    with ViewerProcess(path, tmp_path / "server.log", "--poll", "0") as server:
        browser.get(server.url)
        label = lambda: browser.find_element(By.ID, "cycle-label").text  # noqa: E731
        text = lambda: browser.find_element(By.ID, "cycles-text").text  # noqa: E731
        deadline.until(lambda: label() == "cycle 3" and "4 cycles: 0 .. 3" in text(), "energy at its newest cycle")
        deadline.until(lambda: drawn_fraction(shot(browser, "slice-view")) > 0.2, "the energy slice")
        slice_energy = shot(browser, "slice-view").astype(float)
        bar_energy = browser.find_element(By.ID, "colorbar").get_attribute("src")
        browser.find_element(By.CSS_SELECTOR, "#field-select .v-field").click()
        item = deadline.until(lambda: [e for e in browser.find_elements(By.CSS_SELECTOR, ".v-overlay .v-list-item")
                                       if e.text.strip() == "pressure"], "the field menu")[0]
        deadline.until(lambda: item.click() or True, "the pressure entry to take the click")
        deadline.until(lambda: label() == "cycle 2" and "3 cycles: 0 .. 2" in text(), "pressure at its newest cycle")
        deadline.until(lambda: browser.find_element(By.ID, "colorbar").get_attribute("src") != bar_energy,
                       "the colour bar of pressure (its name and range)")
        deadline.until(lambda: np.abs(shot(browser, "slice-view").astype(float) - slice_energy).mean() > 2,
                       "the pressure slice")
        assert console_errors(browser, server.url) == []
        browser.get("about:blank")


WRITER = """
import sys, time
from insitu.viewer.sample import make_sample_cache
for cycle in (2, 3, 4):
    time.sleep(0.5)
    make_sample_cache(sys.argv[1], shape=(12, 12, 12), cycles=(cycle,), ranks=1, max_steps=10, ratio=2)
"""


@pytest.mark.browser
@pytest.mark.timeout(BROWSER_BUDGET_S + 60)
def test_browser_follows_a_writer_process(browser, tmp_path):
    """A writer process appends cycles while the page is open: the slider's maximum grows and the page, left at
    the newest cycle, follows (the viewer looks every --poll s)."""
    from selenium.webdriver.common.by import By

    path = tmp_path / "live.cache"
    make_sample_cache(path, shape=(12, 12, 12), cycles=(0, 1), ranks=1, max_steps=10, ratio=2)
    deadline = Deadline(BROWSER_BUDGET_S)
    with ViewerProcess(path, tmp_path / "server.log", "--poll", "0.5") as server:
        browser.get(server.url)
        text = lambda: browser.find_element(By.ID, "cycles-text").text  # noqa: E731
        label = lambda: browser.find_element(By.ID, "cycle-label").text  # noqa: E731
        slider_max = lambda: browser.find_element(  # noqa: E731
            By.CSS_SELECTOR, "#cycle-slider .v-slider-thumb").get_attribute("aria-valuemax")
        deadline.until(lambda: "2 cycles: 0 .. 1" in text() and label() == "cycle 1", "the page at cycle 1")
        assert slider_max() == "1"
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], env=dict(os.environ, OMP_NUM_THREADS="1"))
        try:
            deadline.until(lambda: slider_max() == "4" and "5 cycles: 0 .. 4" in text(), "the slider to grow to 4")
            deadline.until(lambda: label() == "cycle 4", "the page to follow to the newest cycle")
            assert writer.wait(timeout=60) == 0
            assert console_errors(browser, server.url) == []
            browser.get("about:blank")
        finally:
            if writer.poll() is None:
                writer.kill()
                writer.wait()


def test_a_frame_still_being_encoded_is_asked_for_until_it_comes():
    """trame-vtk's image delivery with the viewer's retry: an encoder busy for 6 polls still delivers the frame
    (trame-vtk's own retry gave up at the second poll, leaving the old picture on screen under load)."""
    import asyncio
    from types import SimpleNamespace

    from trame_vtk.modules.vtk.protocols.publish_image_delivery import vtkWebPublishImageDelivery

    from insitu.viewer.app import _reliable_image_delivery

    delivery = vtkWebPublishImageDelivery(decode=False)
    busy = {"polls": 6}
    published: list[dict] = []

    def still_render(options: dict) -> dict:
        if busy["polls"] > 0:
            busy["polls"] -= 1
            return {"stale": True, "image": None}
        return {"stale": False, "image": "frame", "mtime": 2}

    delivery.still_render = still_render
    delivery.addAttachment = lambda image: image
    delivery.publish = lambda topic, reply: published.append(reply)
    delivery.tracking_views["v"] = {"enabled": True, "mtime": 1, "quality": 90, "ratio": 1, "originalSize": [4, 4]}
    delivery.stale_handler_count["v"] = 0
    _reliable_image_delivery(SimpleNamespace(linkProtocols=[delivery]))

    async def push_and_wait() -> None:
        delivery.push_render("v")
        for _ in range(200):
            if published:
                return
            await asyncio.sleep(0.01)

    asyncio.run(push_and_wait())
    assert busy["polls"] == 0 and [r["image"] for r in published] == ["frame"]
