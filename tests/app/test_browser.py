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


@pytest.mark.slow
def test_at_phone_width_a_long_video_is_headed_by_its_timeline(serve, tmp_path, page):
    """A video of three parts: the headline holds the parts' labels with their share of the time, never
    a class the video does not show; the page fits 390 px, and the path box follows the result."""
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(serve())
    page.fill("#source", str(colour_video(tmp_path / "short.mp4", [(4, 3.0)])))
    page.click("#by-source button")
    page.wait_for_selector("#result:not([hidden])", timeout=60_000)
    assert page.inner_text(".top-class .bar-label") == "cyan"

    page.set_input_files("#file", str(colour_video(tmp_path / "three.mp4", [(0, 6.0), (2, 8.0), (4, 6.0)])))
    page.wait_for_selector("#timeline:not([hidden])", timeout=60_000)
    assert page.input_value("#source") == ""  # not the earlier path, under another file's result
    assert page.inner_text("#title") == "three.mp4"
    segments = page.locator("#segments tr td:nth-child(4)").all_inner_texts()
    assert segments == ["red", "blue", "cyan"]
    assert "timeline" in page.inner_text("#top-title")
    headline = page.locator(".top-class .bar-label").all_inner_texts()
    assert headline == ["blue", "red", "cyan"]  # 8 s, then 6 s and 6 s
    shares = [float(v.rstrip("%")) for v in page.locator(".top-class .bar-value").all_inner_texts()]
    spans = [float(page.locator(f"#segments tr td:nth-child({k})").all_inner_texts()[i]) for i in range(3) for k in (2, 3)]
    lengths = {label: spans[2 * i + 1] - spans[2 * i] for i, label in enumerate(segments)}
    assert shares == pytest.approx([100 * lengths[label] / sum(lengths.values()) for label in headline], abs=0.3)

    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width} px wide at 390 px"
    plot = page.locator("#plot").bounding_box()
    assert plot["width"] >= 1200  # at its own size, in a box that scrolls sideways, not shrunk to 390 px
    gap = page.evaluate("document.querySelector('#segments').closest('table').getBoundingClientRect().top"
                        " - document.querySelector('#plot').getBoundingClientRect().bottom")
    assert gap < 60, f"{gap} px of blank under the timeline"
    screenshot = tmp_path / "laps_app_390.png"
    page.screenshot(path=str(screenshot), full_page=True)
    print(f"\nscreenshot: {screenshot}")
