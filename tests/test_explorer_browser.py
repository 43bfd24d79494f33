"""The explorer in a real browser: Debian's chromium, driven by Selenium through Debian's
chromium-driver, over `influence replay --serve` on a generated stream.

Selenium rather than Playwright: Playwright drives a browser build of its own (which this
project's machines cannot download) and only loosely matches a system Chromium's version,
while Debian ships chromium-driver built from the same source as chromium. The session fixture
installs both when they are missing (CI runs as root, with no standard input) and fails, never
skips, if it cannot. `INFLUENCE_SCREENSHOTS=DIR` keeps the screenshots (docs/explorer/ holds
the committed ones); otherwise they go to a temporary directory.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.synthetic import GeneratorConfig, generate, write_jsonl

REPO = Path(__file__).resolve().parents[1]
BROWSER, DRIVER = "chromium", "chromedriver"
APT_PACKAGES = ("chromium", "chromium-driver")
INSTALL_TIMEOUT_S = 900
SERVE_TIMEOUT_S = 120
PAGE_TIMEOUT_S = 30
WINDOW = "1280,2300"


def _apt(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    return subprocess.run(
        ["apt-get", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_S,
        check=False,
    )


@pytest.fixture(scope="session")
def browser_binaries() -> tuple[str, str]:
    """Paths of chromium and chromedriver, apt-installed first if missing."""
    if not (shutil.which(BROWSER) and shutil.which(DRIVER)):
        install = ("install", "-y", "--no-install-recommends", *APT_PACKAGES)
        done = _apt(*install)
        if done.returncode != 0:  # a fresh machine has no package lists yet
            _apt("update")
            done = _apt(*install)
        if done.returncode != 0:
            pytest.fail(f"could not apt-get install {APT_PACKAGES}: {done.stderr[-2000:]}")
    browser, driver = shutil.which(BROWSER), shutil.which(DRIVER)
    if browser is None or driver is None:
        pytest.fail(f"{BROWSER} and {DRIVER} are still missing after apt-get install")
    return browser, driver


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`influence replay STREAM --serve 127.0.0.1:0` running; yields its base URL."""
    stream = tmp_path_factory.mktemp("explorer") / "stream.jsonl"
    with stream.open("wb") as out:
        write_jsonl(generate(GeneratorConfig(users=200, days=21, seed=2, scenarios=("ring",))), out)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "replay", str(stream), "--serve", "127.0.0.1:0"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        url = None
        for line in proc.stderr:
            found = re.search(r"serving the replayed state on (http://\S+)/ui/", line)
            if found:
                url = found.group(1)
                break
        assert url is not None, "the replay did not start serving"
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=SERVE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        assert proc.returncode == 0, "interrupted, the server stops cleanly"


@pytest.fixture(scope="module")
def driver(browser_binaries: tuple[str, str]) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, chromedriver = browser_binaries
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.add_argument(f"--window-size={WINDOW}")
    chrome = webdriver.Chrome(service=Service(chromedriver), options=options)
    chrome.set_page_load_timeout(PAGE_TIMEOUT_S)
    try:
        yield chrome
    finally:
        chrome.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wanted = os.environ.get("INFLUENCE_SCREENSHOTS")
    folder = Path(wanted) if wanted else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def api(url: str, path: str) -> Any:
    with urllib.request.urlopen(url + path, timeout=PAGE_TIMEOUT_S) as response:
        return orjson.loads(response.read())


def test_search_a_user_read_the_score_and_the_history(
    driver: Any, served: str, shots: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    top = api(served, "/top?n=2")["users"]
    user = top[0]["user"]
    driver.get(served + "/ui/")
    assert driver.find_element(By.CSS_SELECTOR, "label[for=q]").text == "User id"
    driver.save_screenshot(str(shots / "explorer-index.png"))
    # keyboard only: Tab past the skip link and the home link to the search box, type, Enter
    body = driver.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    assert driver.switch_to.active_element.text == "Skip to content"
    driver.switch_to.active_element.send_keys(Keys.TAB)
    driver.switch_to.active_element.send_keys(Keys.TAB)
    assert driver.switch_to.active_element.get_attribute("id") == "q"
    driver.switch_to.active_element.send_keys(user, Keys.ENTER)
    assert driver.current_url == f"{served}/ui/users/{user}"
    expected = api(served, f"/users/{user}")["score"]
    assert driver.find_element(By.CSS_SELECTOR, "dd.score").text == f"{expected:.2f}"
    history = api(served, f"/users/{user}/history")
    closes = driver.find_elements(By.CSS_SELECTOR, "table.closes tbody tr")
    assert len(closes) == len(history["daily"]["scores"]) > 1
    last = closes[-1].find_elements(By.TAG_NAME, "td")[1].get_attribute("textContent")
    assert last == f"{history['daily']['scores'][-1]:.2f}"
    changes = driver.find_elements(By.CSS_SELECTOR, "table.changes tbody tr")
    assert len(changes) == len(history["changes"])
    assert driver.find_elements(By.CSS_SELECTOR, "svg circle")
    driver.save_screenshot(str(shots / "explorer-user.png"))


def test_compare_two_users_and_a_missing_one(driver: Any, served: str, shots: Path) -> None:
    from selenium.webdriver.common.by import By

    a, b = (e["user"] for e in api(served, "/top?n=2")["users"])
    driver.get(f"{served}/ui/compare?users={a},{b}")
    names = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".user-name")]
    assert names == [a, b]
    scores = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "dd.score")]
    assert scores == [f"{api(served, f'/users/{u}')['score']:.2f}" for u in (a, b)]
    driver.save_screenshot(str(shots / "explorer-compare.png"))
    driver.get(f"{served}/ui/users/nobody-at-all")
    assert driver.find_element(By.TAG_NAME, "h1").text == "No such user"


def test_the_replay_serves_the_api_and_metrics_beside_the_explorer(served: str) -> None:
    user = api(served, "/top?n=1")["users"][0]["user"]
    history = api(served, f"/users/{user}/history")
    assert history["user"] == user and history["changes"] and history["daily"]["scores"]
    assert api(served, f"/users/{user}/explain")["user"] == user
    with urllib.request.urlopen(served + "/metrics", timeout=PAGE_TIMEOUT_S) as response:
        assert b"influence_events_consumed_total" in response.read()
    try:
        urllib.request.urlopen(served + "/users/nobody", timeout=PAGE_TIMEOUT_S)
        raise AssertionError("a missing user is a 404")
    except urllib.error.HTTPError as exc:
        assert exc.code == 404 and orjson.loads(exc.read())["error"] == "unknown_user"
