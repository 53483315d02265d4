"""Stage-5 review as the reviewer sees it: a flagged clip pushed to a real Label Studio server, then
the labeling page opened in headless Chromium (logged in through the login form). The page must
show the clip's video (a decoded frame painted on the player), its audio (the media element loaded,
plus the waveform player), the transcript, the model's rationale and the emotion choices; two
screenshots are kept and checked to be real pictures.

Needs Debian's chromium + chromium-driver (scripts/setup --dev installs them). Without them the test
fails, so a CI machine that lost them is noticed; EMOFORGE_SKIP_BROWSER=1 skips it on purpose."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from pipeline.review.push import push_review
from tests.test_review_labelstudio import _client, _config, _task, review_run  # noqa: F401 (review_run: fixture)

pytestmark = pytest.mark.slow  # starts Label Studio and a browser

ADMIN_EMAIL = "admin@emoforge.local"  # scripts/label-studio's admin; the password is the fixture's (label_studio.password)
WAIT_S = 60  # the editor bundle is large and the machine may be busy


@pytest.fixture(scope="session")
def chromedriver() -> str:
    """Session-scoped so the check runs before the Label Studio server is started for nothing."""
    if os.environ.get("EMOFORGE_SKIP_BROWSER") == "1":
        pytest.skip("EMOFORGE_SKIP_BROWSER=1: headless-browser review test skipped on request")
    chrome = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    if not (chrome and driver):
        missing = [n for n, p in (("chromium", chrome), ("chromedriver", driver)) if not p]
        pytest.fail(f"the headless review test needs {' and '.join(missing)} on PATH: run scripts/setup --dev "
                    "(apt: chromium chromium-driver), or set EMOFORGE_SKIP_BROWSER=1 to skip this test", pytrace=False)
    return driver


@pytest.fixture()
def browser(chromedriver):
    opts = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000",
                "--autoplay-policy=no-user-gesture-required", "--mute-audio"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(chromedriver), options=opts)
    driver.set_page_load_timeout(WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()


# What the labeling editor shows, read from the page. Scoped to the editor (.lsf-editor): the Data
# Manager table beside it also prints the task's raw data, which must not count.
PROBE = """
const [videoUrl, audioUrl] = arguments;
const abs = (u) => new URL(u, location.href).href;
const ed = document.querySelector('.lsf-editor');
if (!ed) return {editor: false};
const text = ed.innerText;
// the media elements themselves sit outside the editor's tree (LS mounts them hidden, paints a canvas)
const media = (tag, url) => [...document.querySelectorAll(tag)].find(m => m.currentSrc === abs(url) || m.src === abs(url));
const v = media('video', videoUrl), a = media('audio', audioUrl);
// LS draws video frames onto a canvas; count distinct colours of what it painted (sampled)
let frameColours = 0;
const canvas = ed.querySelector('.lsf-video canvas');
if (canvas && canvas.width > 0 && canvas.height > 0) {
  const d = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  const seen = new Set();
  for (let i = 0; i < d.length; i += 4 * 7) if (d[i + 3] > 0) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
  frameColours = seen.size;
}
const p = ed.querySelector('.lsf-paragraphs'), r = ed.querySelector('.lsf-richtext');
return {
  editor: true, text,
  video: v ? {src: v.currentSrc, readyState: v.readyState, duration: v.duration, w: v.videoWidth, h: v.videoHeight} : null,
  audio: a ? {src: a.currentSrc, readyState: a.readyState, duration: a.duration} : null,
  waveform: !!ed.querySelector('.lsf-audio-tag canvas'),
  frameColours,
  transcript: p ? p.innerText : null,
  rationale: r ? r.innerText : null,
};
"""


def _missing(state: dict, want_text: list[str]) -> list[str]:
    """What the reviewer cannot see yet (empty: all there)."""
    if not state.get("editor"):
        return ["labeling editor"]
    out = []
    v, a = state["video"], state["audio"]
    if not v or v["readyState"] < 2 or not v["w"]:
        out.append(f"video loaded and decoded ({v})")
    if state["frameColours"] < 500:
        out.append(f"a video frame painted on the player ({state['frameColours']} colours)")
    if not a or a["readyState"] < 1:
        out.append(f"audio loaded ({a})")
    if not state["waveform"]:
        out.append("audio waveform player")
    if not state["transcript"] or "I am so happy today" not in state["transcript"]:
        out.append("transcript")
    if not state["rationale"] or "Step 1" not in state["rationale"]:
        out.append("rationale")
    out += [f"text {t!r}" for t in want_text if t not in state["text"]]
    return out


def _colours(png: Path, box: tuple[int, int, int, int] | None = None) -> int:
    from PIL import Image

    with Image.open(png) as im:
        im = im.convert("RGB")
        if box:
            im = im.crop(box)
        found = im.getcolors(maxcolors=1 << 20)
        return len(found) if found is not None else 1 << 20


def _scroll_editor(driver, js_target: str) -> None:
    """Scroll the editor's own scroll pane (.lsf-main-content) so js_target (an expression) is in view."""
    driver.execute_script(f"const el = {js_target}; el.scrollIntoView({{block: 'start'}});")
    WebDriverWait(driver, 10).until(lambda d: d.execute_script(
        f"const r = ({js_target}).getBoundingClientRect(); return r.top >= 0 && r.top < window.innerHeight / 2;"))


@pytest.mark.timeout(300)
def test_reviewer_sees_video_audio_transcript_rationale_and_choices(chromedriver, label_studio, review_run, browser,  # noqa: F811
                                                                     tmp_path):
    ls = label_studio
    config = _config(ls)
    report = push_review(review_run, config, _client(ls, config))
    assert report.pushed == 2 and report.problems == []
    task_id = report.task_ids["v1"]
    data = _task(ls, task_id)["data"]
    assert "media/wolf/v1/clip.mp4" in data["video"] and data["audio"] == data["video"]

    # log in through the form, as a reviewer would
    browser.get(ls.url + "/user/login/")
    browser.find_element(By.NAME, "email").send_keys(ADMIN_EMAIL)
    browser.find_element(By.NAME, "password").send_keys(ls.password)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit], input[type=submit]").click()
    try:
        WebDriverWait(browser, WAIT_S).until(lambda d: "/user/login" not in d.current_url)
    except TimeoutException:
        pytest.fail(f"login as {ADMIN_EMAIL} did not go through: {browser.find_element(By.TAG_NAME, 'body').text[:500]}")

    # the Data Manager with ?task= opens the labeling editor on that task
    browser.get(f"{ls.url}/projects/{report.project_id}/data?task={task_id}")
    want_text = ["Clip v1 (model says: happiness)", "SPEAKER_00", "AU12", *config.taxonomy]
    state: dict = {}

    def ready(d):
        state.clear()
        state.update(d.execute_script(PROBE, data["video"], data["audio"]) or {})
        return not _missing(state, want_text)

    try:
        WebDriverWait(browser, WAIT_S, poll_frequency=1).until(ready)
    except TimeoutException:
        shot = tmp_path / "review-timeout.png"
        browser.save_screenshot(str(shot))
        lacking = _missing(state, want_text)
        state.pop("text", None)
        pytest.fail(f"after {WAIT_S} s the labeling page still lacks: {lacking}; page state {state}; screenshot {shot}")

    v, a = state["video"], state["audio"]
    assert (v["w"], v["h"]) == (640, 360) and 2.8 < v["duration"] < 3.3, v
    assert 2.8 < a["duration"] < 3.3, a

    # screenshot 1: top of the editor: header, video frame, rationale and evidence
    _scroll_editor(browser, "document.querySelector('.lsf-main-view__annotation h3')")
    top = tmp_path / "review-top.png"
    assert browser.save_screenshot(str(top))
    rect = browser.execute_script("const r = document.querySelector('.lsf-video canvas').getBoundingClientRect();"
                                  "return [r.left, r.top, r.right, Math.min(r.bottom, window.innerHeight),"
                                  " window.devicePixelRatio];")
    *box, dpr = rect
    box = tuple(int(c * dpr) for c in box)
    assert box[3] - box[1] > 100, f"the video player is not in view: {rect}"
    # the picture the reviewer sees where the player is: a real frame, not an empty box
    assert _colours(top, box) > 1000, f"no video frame visible in {top} at {box}"

    # screenshot 2: audio waveform, transcript and the choices
    _scroll_editor(browser, "document.querySelector('.lsf-editor .lsf-audio-tag')")
    bottom = tmp_path / "review-transcript.png"
    assert browser.save_screenshot(str(bottom))
    visible = browser.execute_script("""const ed = document.querySelector('.lsf-editor');
        const inView = (el) => { const r = el.getBoundingClientRect();
                                 return r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight; };
        return {waveform: inView(ed.querySelector('.lsf-audio-tag canvas')),
                transcript: inView(ed.querySelector('.lsf-paragraphs')),
                choices: [...ed.querySelectorAll('.lsf-choices')].some(inView)};""")
    assert visible == {"waveform": True, "transcript": True, "choices": True}, visible

    for png in (top, bottom):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 30_000, png
        assert _colours(png) > 2000, f"{png} is nearly blank"
        print(f"screenshot: {png}")
