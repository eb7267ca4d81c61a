"""Driving Debian's headless Chromium through Selenium, for the dashboard's browser tests:
the browser, its console check, waiting for what the page shows, and where screenshots go.

Screenshots go to a folder under pytest's temporary directory, or where
QSTASH_EMULATOR_SCREENSHOTS says: the README's pictures are made with

    QSTASH_EMULATOR_SCREENSHOTS=docs/screenshots python -m pytest tests/test_dashboard_browser.py
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from qstash_emulator import Emulator

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
REBOUND = "rebound.test"  # resolves to 127.0.0.1 inside the browser, like a rebinding attack
ELSEWHERE = "elsewhere.test"  # another site, also served from 127.0.0.1
# The size the README's pictures are taken at: a common laptop screen.
WINDOW = (1280, 800)

MARKS = [
    pytest.mark.browser,
    # Skipped where Chromium is missing, except in CI (.ci/run installs it), where they must run.
    pytest.mark.skipif(
        not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()) and not os.environ.get("CI"),
        reason="needs Debian's chromium and chromium-driver (apt-get install chromium "
        "chromium-driver; .ci/run installs them)",
    ),
]

T = TypeVar("T")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="qe-chromium-")
    for flag in [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        f"--host-resolver-rules=MAP {REBOUND} 127.0.0.1, MAP {ELSEWHERE} 127.0.0.1",
    ]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        viewport(driver, *WINDOW)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def viewport(driver: Any, width: int, height: int) -> None:
    """Make the page's viewport ``width`` x ``height`` CSS pixels (the window's frame aside)."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
    )


@pytest.fixture
def checked(browser: Any) -> Iterator[Any]:
    """The browser, with its console checked for errors after the test."""
    browser.get_log("browser")  # drop what earlier tests left
    yield browser
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    browser.get("about:blank")  # close the live stream before the emulator stops
    assert errors == []


def until(driver: Any, what: str, check: Callable[[Any], T], timeout: float = 10) -> T:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    def attempt(d: Any) -> T | None:
        try:
            return check(d)
        except StaleElementReferenceException:  # the view re-rendered under us: look again
            return None

    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(attempt, f"waited for {what}")


def css(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, selector))


def one(driver: Any, selector: str, what: str | None = None) -> Any:
    return until(driver, what or selector, lambda d: (css(d, selector) or [None])[0])


def click(driver: Any, selector: str, what: str | None = None) -> None:
    """Click the element, looking it up again if a live refresh replaced it meanwhile."""

    def clicked(d: Any) -> bool:
        found = css(d, selector)
        if not found:
            return False
        found[0].click()
        return True

    until(driver, what or selector, clicked)


def open_view(driver: Any, emulator: Emulator, view: str, user: str = "defaultUser") -> None:
    driver.get(f"{emulator.url}/#view={view}&user={user}")
    until(driver, "the live stream", lambda d: one(d, "#live").text == "live")
    one(driver, f'#tabs button[data-view="{view}"][aria-current="page"]')


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: never into the work tree unless asked (a test run must not
    change tracked files)."""
    chosen = os.environ.get("QSTASH_EMULATOR_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
