"""The console in a real browser (Debian's chromium and chromedriver, through selenium): unlock with the token,
approve one held draft and reject another, each leaving the held list and changed in the database; the page
checked by axe-core (run inside the page, offline) for serious or critical accessibility violations."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agents.tasks import APPROVED, HELD, REJECTED, TaskStore
from kernel.db import make_engine
from tests.daemon.conftest import REPO
from tests.daemon.console_support import hold_draft

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
AXE = REPO / "build" / "node" / "a11y" / "node_modules" / "axe-core" / "axe.min.js"  # tests/peers/a11y
pytestmark = pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None,
                                reason="chromium and chromium-driver are not installed (tests/peers/apt.sh)")
TOKEN = "browser-console-token-7fK2pQ9xZ3"
REFRESH = 4  # seconds; the test unticks the reload first, and ticks it again at the end to see it reload
# The flags of tests/daemon/test_status_page_browser.py: no sandbox (root in CI), nothing fetched from outside.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1200,1600")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM or ""
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _config(tmp_path: Path) -> Path:
    token = tmp_path / "console-token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o600)
    config = tmp_path / "selfpub.toml"
    config.write_text(
        f'state_dir = "{tmp_path / "state"}"\n'
        f'[http]\nport = 0\nconsole_token_file = "{token}"\nauto_refresh_seconds = {REFRESH}\n'
        '[budget]\nmin_balance = "1"\nresume_balance = "2"\n'
        '[approval]\nmode = "manual"\n'
    )
    return config


def _axe(driver: object) -> list[dict]:
    """axe-core's violations of the page loaded now (the script injected by the driver: the page's CSP allows none)."""
    driver.execute_script(AXE.read_text())  # type: ignore[attr-defined]
    return driver.execute_async_script(  # type: ignore[attr-defined]
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations), e => done([{id: 'axe-error',"
        " impact: 'critical', help: String(e), nodes: []}]));")


def _serious(violations: list[dict]) -> list[str]:
    return [f"{v['id']} ({v['impact']}): {v['help']} {[n.get('target') for n in v.get('nodes', [])][:3]}"
            for v in violations if v.get("impact") in ("serious", "critical")]


def test_approve_and_reject_in_chromium(tmp_path: Path, spawn, browser) -> None:  # noqa: ANN001
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    config = _config(tmp_path)
    subprocess.run([sys.executable, "-m", "daemon.cli", "--config", str(config), "ledger", "deposit", "3"],
                   cwd=REPO, check=True, capture_output=True)  # creates the state database, every room at head
    engine = make_engine(f"sqlite:///{tmp_path / 'state' / 'selfpub.db'}")
    store = TaskStore(engine)
    store.migrate()
    first = hold_draft(store, 1, title="Rust 2026: builds a fifth faster", score=6,
                       reason="held: approval mode is manual", cost=120_000)
    second = hold_draft(store, 2, title="What the new borrow checker changes", score=5,
                        reason="held: approval mode is manual", cost=80_000)
    d = spawn(config, "--fake-cycle-seconds", "0.1")
    base = f"http://127.0.0.1:{d.port()}/"
    driver = browser
    wait = WebDriverWait(driver, 30)
    try:
        driver.get(base)
        driver.find_element(By.ID, "autorefresh").click()  # off for this tab's session: no reload mid-click
        held = driver.find_element(By.ID, "held").text
        assert "Rust 2026: builds a fifth faster" in held and "What the new borrow checker changes" in held
        assert not driver.find_elements(By.CSS_SELECTOR, "button.approve")  # locked until the token is given
        a11y = {"locked": _serious(_axe(driver)) if AXE.exists() else None}

        driver.find_element(By.ID, "token").send_keys(TOKEN)
        driver.find_element(By.CSS_SELECTOR, "#unlock button").click()
        wait.until(ec.presence_of_element_located((By.ID, "unlocked")))
        if AXE.exists():
            a11y["unlocked"] = _serious(_axe(driver))  # with the approve and reject forms

        driver.find_element(By.CSS_SELECTOR, f'tr[data-task="{first}"] button.approve').click()
        wait.until(lambda drv: "done=approved" in drv.current_url)
        assert not driver.find_elements(By.CSS_SELECTOR, f'tr[data-task="{first}"]')  # left the held list
        assert driver.find_elements(By.CSS_SELECTOR, f'tr[data-task="{second}"]')
        assert "publishes on the next cycle" in driver.find_element(By.CSS_SELECTOR, ".notice").text
        assert store.get(first).status == APPROVED and store.get(second).status == HELD

        row = f'tr[data-task="{second}"]'
        driver.find_element(By.CSS_SELECTOR, f'{row} input[name="reason"]').send_keys("off topic for this persona")
        driver.find_element(By.CSS_SELECTOR, f"{row} button.reject").click()
        wait.until(lambda drv: "done=rejected" in drv.current_url)
        assert not driver.find_elements(By.CSS_SELECTOR, row)
        assert driver.find_elements(By.ID, "held-none")
        rejected = store.get(second)
        assert rejected.status == REJECTED and rejected.reasons[-1] == "rejected by a person: off topic for this persona"
        driver.refresh()  # a reload after the 303 is a GET: nothing is sent again
        assert "off topic for this persona" in driver.find_element(By.ID, "failures").text
        assert "UTC" in driver.find_element(By.XPATH, "//div[@class='card'][contains(., 'next cycle')]").text
        assert not driver.find_element(By.ID, "autorefresh").is_selected()  # stays off for the session
        driver.find_element(By.ID, "autorefresh").click()
        wait.until(lambda drv: drv.current_url == base)  # the page's own script (allowed by the CSP) reloaded it
    finally:
        d.signal(signal.SIGTERM)
        assert d.wait(30) == 0
        engine.dispose()
    approvals = [r for r in d.lines() if r.get("msg", "").startswith("console: draft")]
    assert [r["msg"] for r in approvals] == ["console: draft approved", "console: draft rejected"]
    assert TOKEN not in d.text()  # never logged
    if not AXE.exists():
        pytest.skip(f"approve/reject passed; no accessibility check: {AXE} is missing (tests/peers/setup.sh)")
    assert a11y == {"locked": [], "unlocked": []}, a11y
