"""The HTML report renders in headless Chromium, offline: plotly plots drawn, PNGs shown, no network needed.

Chromium is Debian's ``chromium`` package. Where it is missing, the test installs it with apt-get in CI
(``CI`` set) and is skipped elsewhere.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from test_reports import built_report  # the shared small real study and its report (built once per session)

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--virtual-time-budget=15000"]


def _chromium() -> str:
    path = shutil.which("chromium")
    if path:
        return path
    if not os.environ.get("CI"):
        pytest.skip("chromium is not installed (apt-get install -y chromium); CI installs it")
    for cmd in (["apt-get", "install", "-y", "--no-install-recommends", "chromium"],
                ["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]):
        subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        if cmd[1] == "install" and shutil.which("chromium"):
            break
    path = shutil.which("chromium")
    if not path:
        pytest.fail("CI: chromium is missing and `apt-get install -y chromium` did not install it")
    return path


@pytest.fixture(scope="module")
def chromium() -> str:
    return _chromium()


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    return built_report(tmp_path_factory)


def _run(chromium: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                          text=True, timeout=180)


@pytest.mark.slow
def test_html_report_is_self_contained(report):
    text = report["html"].read_text(encoding="utf-8")
    assert not re.search(r"""<(script|img|link)[^>]+(src|href)=["']?(https?:|//)""", text), "loads from the network"
    assert text.count("data:image/png;base64,") >= 2  # the gap plot and learning curves are inline PNGs
    assert text.count("Plotly.newPlot") == sum(1 for f in report["data"]["plots"]["files"] if f["html"])
    for e in report["data"]["gap_analysis"]["effects"]:
        assert html.escape(e["sentence"]) in text


@pytest.mark.slow
def test_html_report_renders_in_headless_chromium(report, chromium, tmp_path):
    page = report["html"]
    plotly_plots = [f["name"] for f in report["data"]["plots"]["files"] if f["html"]]
    # The DOM after scripts ran: plotly drew every figure (each gets its own SVG root).
    dom = _run(chromium, tmp_path, "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count('class="plot-container plotly"') == len(plotly_plots), dom.stderr[-2000:]
    assert dom.stdout.count('class="main-svg"') >= len(plotly_plots)
    for name in plotly_plots:
        block = dom.stdout.split(f'id="plot-{name}"', 1)[1].split("</figure>", 1)[0]
        assert 'class="main-svg"' in block, f"plot {name} not drawn"

    shot = tmp_path / "report.png"
    proc = _run(chromium, tmp_path, f"--screenshot={shot}", "--window-size=1400,3000", page.as_uri())
    assert proc.returncode == 0 and shot.exists(), proc.stderr[-2000:]
    from PIL import Image

    with Image.open(shot) as img:
        pixels = np.asarray(img.convert("RGB"), dtype=np.int16)
    assert pixels.shape[:2] == (3000, 1400)
    grey = pixels.max(axis=2) - pixels.min(axis=2)
    non_white = (pixels.min(axis=2) < 235).mean()
    coloured = (grey > 60).mean()  # plot marks, bars and lines: text alone is grey
    assert non_white > 0.05, f"screenshot nearly blank ({non_white:.3f} non-white)"
    assert coloured > 0.01, f"no coloured plot marks rendered ({coloured:.4f})"
    # plots in the upper and the lower half of the page, not just one image
    top, bottom = (grey[:1500] > 60).mean(), (grey[1500:] > 60).mean()
    assert top > 0.002 and bottom > 0.002, (top, bottom)
    if os.environ.get("TUNER_KEEP_SCREENSHOT"):  # to look at it
        shutil.copy(shot, os.environ["TUNER_KEEP_SCREENSHOT"])
