"""Run ``insitu view`` in a subprocess and look at it through headless Chromium.

Test code (tests/test_viewer.py), also used by benchmarks/viewer_bench.py; users never need it.

Needs selenium (the ``test`` extra) and a Chromium with its chromedriver
(Debian: ``apt-get install -y chromium chromium-driver``), or the paths in
``$INSITU_CHROMIUM`` / ``$INSITU_CHROMEDRIVER``. The driver is always given
explicitly, so selenium never tries to download one.
"""
from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, TypeVar

import numpy as np

from insitu.viewer.scene import BACKGROUND

T = TypeVar("T")
BACKGROUND_RGB = np.array(BACKGROUND) * 255
INSTALL_HINT = ("no headless Chromium + chromedriver found (Debian: apt-get install -y chromium chromium-driver; "
                "or set INSITU_CHROMIUM / INSITU_CHROMEDRIVER)")


def find_browser() -> tuple[str, str] | None:
    """(Chromium binary, chromedriver) from the environment or the PATH; None when either is missing."""
    binary = os.environ.get("INSITU_CHROMIUM") or next(
        (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
    driver = os.environ.get("INSITU_CHROMEDRIVER") or shutil.which("chromedriver")
    return (binary, driver) if binary and driver else None


def headless_chrome(binary: str, driver: str, size: tuple[int, int] = (1400, 900)) -> Any:
    """A selenium Chrome driver, headless, on ``binary`` through ``driver``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the console, for console_errors()
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              f"--window-size={size[0]},{size[1]}", "--disable-extensions", "--no-first-run"):
        opts.add_argument(a)
    d = webdriver.Chrome(service=Service(driver), options=opts)
    d.set_page_load_timeout(30)
    return d


class ViewerProcess:
    """``python -m insitu.cli.view CACHE --port 0 ...`` in a subprocess; :attr:`url` once it serves.

    Port 0 lets the OS pick a free loopback port (no race with other tests);
    the server prints the one it got. Always :meth:`stop` it (or use ``with``).
    """

    def __init__(self, cache: str | os.PathLike, log: str | os.PathLike, *args: str, timeout: float = 180.0) -> None:
        self.log = Path(log)
        self._out = open(self.log, "w")
        env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
        self.t_launch = time.perf_counter()
        self.proc = subprocess.Popen([sys.executable, "-m", "insitu.cli.view", os.fspath(cache), "--port", "0", *args],
                                     stdout=self._out, stderr=subprocess.STDOUT, env=env)
        try:
            self.url = self._wait_url(timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_s = time.perf_counter() - self.t_launch

    def _wait_url(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log.read_text()
            for line in text.splitlines():
                if line.startswith("insitu view: serving") and "http://" in line:
                    port = line.split("http://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1]
                    return f"http://127.0.0.1:{port}/"
            if self.proc.poll() is not None:
                raise RuntimeError(f"the viewer exited with {self.proc.returncode}:\n{text}")
            time.sleep(0.05)
        raise TimeoutError(f"the viewer did not serve within {timeout} s:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._out.close()

    def __enter__(self) -> "ViewerProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def shot(driver: Any, element_id: str) -> np.ndarray:
    """RGB screenshot (uint8, H x W x 3) of the element with that id."""
    from PIL import Image
    from selenium.webdriver.common.by import By

    png = driver.find_element(By.ID, element_id).screenshot_as_png
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def console_errors(driver: Any, origin: str | None = None) -> list[str]:
    """The browser console's SEVERE entries since the last call (failed requests, uncaught exceptions); with
    ``origin`` (a server's URL) only those naming it: a page of an earlier test, closed after its server
    stopped, may still log that its connection is gone."""
    found = [f"{e.get('source')}: {e.get('message')}" for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    return [f for f in found if origin is None or origin.rstrip("/") in f]


def drawn_fraction(img: np.ndarray) -> float:
    """Share of pixels that differ from the views' background colour (tolerant of JPEG noise)."""
    return float((np.abs(img.astype(float) - BACKGROUND_RGB).max(axis=-1) > 25).mean())


class Deadline:
    """One overall deadline for all the waits of a test.

    Each wait lasts as long as the state it waits for takes to come; the test
    fails only when the whole budget is spent. A loaded machine slows every
    step, so per-step timeouts fail at a different step each run; one generous
    budget does not, and a real hang still ends.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def until(self, cond: Callable[[], T], what: str, interval: float = 0.1) -> T:
        """``cond()``'s first truthy value; elements not there yet (or re-rendered meanwhile, or still covered by
        another while a menu animates) count as not yet."""
        from selenium.common.exceptions import (ElementClickInterceptedException, NoSuchElementException,
                                                StaleElementReferenceException)

        while True:
            try:
                value = cond()
            except (NoSuchElementException, StaleElementReferenceException, ElementClickInterceptedException):
                value = None
            if value is not None and (value.size > 0 if isinstance(value, np.ndarray) else bool(value)):
                return value
            if time.monotonic() > self.end:
                raise TimeoutError(f"the test's {self.seconds:g} s are spent, still waiting for {what}")
            time.sleep(interval)

    def steady(self, read: Callable[[], T], hold: float, what: str, interval: float = 0.1) -> T:
        """``read()``'s value once it has stayed the same for ``hold`` seconds (e.g. a label after a pause)."""
        value, since = read(), time.monotonic()
        while time.monotonic() - since < hold:
            if time.monotonic() > self.end:
                raise TimeoutError(f"the test's {self.seconds:g} s are spent, {what} still changes ({value!r})")
            time.sleep(interval)
            now = read()
            if now != value:
                value, since = now, time.monotonic()
        return value


def wait_for(cond: Callable[[], T], timeout: float, what: str, interval: float = 0.1) -> T:
    """``cond()``'s first truthy value within ``timeout`` seconds (a :class:`Deadline` of its own)."""
    return Deadline(timeout).until(cond, what, interval)


def coloured_fraction(img: np.ndarray, spread: int = 20) -> float:
    """Share of clearly coloured pixels (channels differ): the volume, not the grey outline or the background."""
    x = img.astype(int)
    return float(((x.max(axis=-1) - x.min(axis=-1)) > spread).mean())
