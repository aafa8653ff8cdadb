"""The status page rendered by headless Chromium: the screenshot is a real page, not a blank one."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from tests.daemon.conftest import REPO, write_config

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (tests/peers/apt.sh)")


def test_status_page_screenshot_in_headless_chromium(tmp_path: Path, spawn) -> None:
    state = tmp_path / "state"
    config = write_config(tmp_path / "selfpub.toml", state)
    subprocess.run([sys.executable, "-m", "daemon.cli", "--config", str(config), "ledger", "deposit", "3"],
                   cwd=REPO, check=True, capture_output=True)
    d = spawn(config, "--fake-cycle-seconds", "0.1", "--fake-cycle-cost", "0.7", "--fast-seconds", "0.3")
    port = d.port()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(r.get("to") == "PAUSED" for r in d.lines()):
        time.sleep(0.2)  # spend down to a pause: the chart gets a falling balance and a rising spend
    shot = tmp_path / "status.png"
    profile = tmp_path / "chromium-profile"
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1000,900",
         f"--screenshot={shot}", f"http://127.0.0.1:{port}/"],
        capture_output=True, text=True, timeout=120,
    )
    d.signal(signal.SIGTERM)
    assert d.wait(30) == 0
    assert shot.exists(), proc.stderr[-2000:]
    img = Image.open(shot).convert("RGB")
    assert img.size == (1000, 900)
    colours = img.getcolors(maxcolors=1_000_000)
    assert colours is not None and len(colours) > 20  # text, state badge, three chart lines
    rgb = {c for _, c in colours}
    near = lambda target: any(sum(abs(a - b) for a, b in zip(c, target)) < 60 for c in rgb)  # noqa: E731
    assert near((37, 99, 235)) and near((220, 38, 38))  # the balance (blue) and spend (red) lines were drawn
    assert near((180, 83, 9))  # the PAUSED badge (dark amber: white text on it is readable, WCAG AA)
    most = max(n for n, _ in colours)
    assert most < 0.95 * img.size[0] * img.size[1]  # not one uniform colour
