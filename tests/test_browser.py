"""The notebook a user slides, in a real browser: JupyterLab on 127.0.0.1 and headless Chromium.

Opens notebooks/04_latent_traversals.ipynb (quick profile: the zoo's ModVAE), runs every cell
through JupyterLab, drags the first latent slider of the `TraversalWidget` and checks that the
decoded face changed. Needs Debian's `chromium` and Playwright's Python API (`.ci/run` installs
both; Playwright drives the system browser through `executable_path`, no browser download).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install playwright)")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (apt-get install chromium)")

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "04_latent_traversals.ipynb"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab")
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    port, token = _free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if k != "FACELIB_RUN_DIR"}  # nothing written by the notebook
    log = open(root / "jupyterlab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
         "--LabApp.news_url=", "--ServerApp.allow_root=True"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"JupyterLab did not start: {(root / 'jupyterlab.log').read_text()[-2000:]}")
            time.sleep(0.5)
    yield url, token
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def test_moving_a_latent_slider_redraws_the_decoded_face(lab):
    url, token = lab
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{url}/lab/tree/{NOTEBOOK.name}?token={token}")
            page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=120_000)
            page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                                   " && window.jupyterapp.shell.currentWidget.sessionContext"
                                   " && window.jupyterapp.shell.currentWidget.sessionContext.session", timeout=120_000)
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
            decoded = page.locator("img.facelib-decoded")
            decoded.wait_for(state="visible", timeout=420_000)
            page.wait_for_function("() => { const i = document.querySelector('img.facelib-decoded');"
                                   " return i && i.naturalWidth > 0; }", timeout=60_000)
            decoded.scroll_into_view_if_needed()
            before_src, before_png = decoded.get_attribute("src"), decoded.screenshot()
            handle = page.locator(".facelib-latent-slider .noUi-handle").first
            handle.scroll_into_view_if_needed()
            box = handle.bounding_box()
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.mouse.down()
            page.mouse.move(box["x"] + box["width"] / 2 + 120, box["y"] + box["height"] / 2, steps=8)
            page.mouse.up()
            page.wait_for_function("(old) => document.querySelector('img.facelib-decoded').src !== old",
                                   arg=before_src, timeout=60_000)
            page.wait_for_timeout(500)
            after_png = decoded.screenshot()
            readout = page.locator(".facelib-latent-slider .widget-readout").first.inner_text()
        finally:
            browser.close()
    assert float(readout) > 0.5, f"the slider did not move (readout {readout!r})"
    assert after_png != before_png, "the decoded face looks the same after the slider moved"
