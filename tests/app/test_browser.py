"""``laps app`` in a real browser: Debian's Chromium, headless, driven by Playwright.

Needs ``chromium`` (``apt-get install chromium``) and ``playwright`` (the ``test`` extra); Playwright's
own browser download is not used. Skips, saying which is missing, without them.
"""

import os
import shutil

import pytest

from tests.app.helpers import colour_video

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def page():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install 'laps[test]'")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1100, "height": 1400})
        finally:
            browser.close()


@pytest.mark.slow
def test_a_browser_uploads_videos_and_sees_the_results(serve, tmp_path, page):
    page.goto(serve(max_bytes=8_000))
    page.set_input_files("#file", str(colour_video(tmp_path / "yellow.mp4", [(3, 3.0)])))
    page.wait_for_selector("#result:not([hidden])", timeout=60_000)
    assert page.inner_text(".top-class .bar-label") == "yellow"
    assert page.locator(".top-class").count() == 5 and page.locator("#timeline").is_hidden()
    assert "answered in" in page.inner_text("#timing")

    page.set_input_files("#file", str(colour_video(tmp_path / "long.mp4", [(0, 6.0), (2, 8.0), (4, 6.0)])))
    page.wait_for_selector("#timeline:not([hidden])", timeout=60_000)
    assert page.locator("#segments tr td:nth-child(4)").all_inner_texts() == ["red", "blue", "cyan"]
    assert page.locator("#plot").evaluate("img => img.complete && img.naturalWidth > 0")
    assert page.locator("#segments img").evaluate_all("imgs => imgs.every(i => i.complete && i.naturalWidth > 0)")
    screenshot = tmp_path / "laps_app.png"
    page.screenshot(path=str(screenshot), full_page=True)
    print(f"\nscreenshot: {screenshot}")

    (tmp_path / "notes.txt").write_text("not a video\n" * 50)
    page.set_input_files("#file", str(tmp_path / "notes.txt"))
    page.wait_for_selector("#status.error", timeout=60_000)
    assert "notes.txt: a text file, not a video" in page.inner_text("#status")
    page.set_input_files("#file", str(colour_video(tmp_path / "big.mp4", [(1, 40.0)])))
    page.wait_for_function("document.querySelector('#status').textContent.includes('limit')", timeout=60_000)
    page.set_input_files("#file", str(tmp_path / "yellow.mp4"))  # still serving
    page.wait_for_selector("#result:not([hidden])", timeout=60_000)
    assert page.inner_text(".top-class .bar-label") == "yellow"
