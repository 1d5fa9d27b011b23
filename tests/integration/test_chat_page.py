"""The chat page in a real browser: headless Debian Chromium, driven by Playwright, against the real stack.

The browser is the system's /usr/bin/chromium (`apt-get install -y chromium`); Playwright's own browser
download is never used (there is no network to fetch it from).
"""

from __future__ import annotations

import os
import re
import shutil
from itertools import pairwise
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.stack import ROOT

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium keeps trying to reach Google's hosts.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]  # fmt: skip
ANSWER_TIMEOUT_MS = 120_000
SCREENSHOT = ROOT / "reports" / "chat_page.png"

# Records every distinct text of the latest answer as the page changes it: the proof that it streams.
WATCH_ANSWER = """() => {
  window.__answerTexts = [];
  const log = document.querySelector('[data-testid="conversation"]');
  new MutationObserver(() => {
    const answer = document.querySelector('[data-testid="answer"]');
    const text = answer ? answer.textContent : "";
    const seen = window.__answerTexts;
    if (text && (!seen.length || seen[seen.length - 1].text !== text)) seen.push({text, at: performance.now()});
  }).observe(log, {childList: true, subtree: true, characterData: true});
}"""


def chromium_path() -> Path:
    if CHROMIUM.exists():
        return CHROMIUM
    if os.geteuid() != 0:
        pytest.skip(f"{CHROMIUM} is missing and this user cannot install it (apt-get install -y chromium)")
    pytest.fail(f"{CHROMIUM} is missing: `apt-get install -y chromium` (make system-deps) installs it")


@pytest.fixture
def page(tmp_path) -> Page:
    executable = chromium_path()
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=str(executable), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 860}, locale="en-US",
        )  # fmt: skip
        page = context.pages[0] if context.pages else context.new_page()
        page.set_default_timeout(30_000)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        try:
            yield page
        finally:
            context.close()
        assert not errors, f"JavaScript errors on the page: {errors}"


def save_screenshot(page: Page, tmp_path: Path) -> None:
    page.screenshot(path=str(tmp_path / SCREENSHOT.name), full_page=True)
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(tmp_path / SCREENSHOT.name, SCREENSHOT)


def set_api_key(page: Page, key: str) -> None:
    field = page.get_by_label("API key")
    field.fill(key)
    field.press("Tab")  # "change": the page stores the key and lists the models with it


def send(page: Page, prompt: str) -> None:
    page.get_by_test_id("prompt-input").fill(prompt)
    page.get_by_test_id("send-button").click()


def test_the_chat_page_streams_an_answer_and_shows_its_route_and_the_metrics(stack, api_key, page, tmp_path):
    page.goto(f"{stack.url}/chat")
    expect(page).to_have_title("Swarm chat")
    set_api_key(page, api_key)
    # The main stack refuses anonymous /v1 calls: the local model listed means the key was sent.
    expect(page.locator('[data-testid="model-select"] option[value="smollm2-135m"]')).to_have_count(1)
    expect(page.get_by_test_id("model-select")).to_have_value("swarm-auto")

    page.evaluate(WATCH_ANSWER)
    send(page, "hello there")
    route = page.get_by_test_id("route-badge")
    done = page.locator('[data-testid="route-badge"], [data-testid="answer-error"]')
    expect(done.first).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
    expect(page.get_by_test_id("answer-error")).to_have_count(0)

    final = page.get_by_test_id("answer").inner_text().strip()
    texts = [t["text"] for t in page.evaluate("window.__answerTexts")]
    partials = [t for t in texts if t.strip() and t.strip() != final]
    assert final and final != "UNSURE", texts
    # Streamed: at least two different partial texts were on the page before the final one, each
    # growing out of the one before.
    assert len(set(partials)) >= 2, texts
    assert all(later.startswith(earlier) for earlier, later in pairwise(texts)), texts

    expect(route).to_have_text("council")
    expect(page.get_by_test_id("skill-badge")).to_contain_text("agent0")
    expect(page.get_by_test_id("confidence-badge")).to_have_text(re.compile(r"^confidence (0|1)\.\d\d$"))
    expect(page.get_by_test_id("cost-badge")).to_have_text(re.compile(r"^cost \$\d+\.\d+$"))
    expect(page.get_by_test_id("latency-badge")).to_have_text(re.compile(r"^latency [\d,]+ ms$"))
    expect(page.get_by_test_id("error")).to_be_hidden()

    # The conversation goes back as `messages`, and the badges move to the newest answer.
    with page.expect_request(lambda r: r.url.endswith("/v1/chat/completions")) as sent:
        send(page, "What is 7*8?")
    roles = [m["role"] for m in sent.value.post_data_json["messages"]]
    assert roles == ["user", "assistant", "user"], roles
    expect(page.get_by_test_id("answer")).to_have_text("56", timeout=ANSWER_TIMEOUT_MS)
    expect(page.get_by_test_id("skill-badge")).to_contain_text("math", timeout=ANSWER_TIMEOUT_MS)
    expect(page.get_by_test_id("route-badge")).to_have_count(1)

    # The live metrics: numbers from GET /api/stats, with both answers logged by the bookkeeping worker.
    panel = page.get_by_test_id("metrics-panel")
    expect(panel.get_by_test_id("metric-requests")).to_have_text(re.compile(r"^[1-9][\d,]*$"))
    expect(panel.get_by_test_id("metric-cache-hit")).to_have_text(re.compile(r"^\d{1,3}\.\d%$"))
    expect(panel.get_by_test_id("metric-spend")).to_have_text(re.compile(r"^\$\d+\.\d+$"))
    expect(panel.get_by_test_id("metric-remaining")).to_have_text(re.compile(r"^\$\d+\.\d+ of \$\d+\.\d+ a day$"))
    expect(panel.locator('li[data-route="council"] .n')).to_have_text(re.compile(r"^[1-9][\d,]*$"))
    expect(panel.get_by_test_id("metrics-updated")).to_have_text(re.compile(r"^updated "))

    save_screenshot(page, tmp_path)
    assert SCREENSHOT.stat().st_size > 10_000


def test_an_api_error_is_shown_in_the_page(stack, page):
    page.goto(f"{stack.url}/chat")
    set_api_key(page, "sk-swarm-wrong")
    send(page, "hello there")
    expect(page.get_by_test_id("error")).to_contain_text("Incorrect API key provided.")
    expect(page.get_by_test_id("answer-error")).to_contain_text("Incorrect API key provided.")
    expect(page.get_by_test_id("send-button")).to_be_enabled()
    # The failed turn is not part of the conversation: the next request carries only the new prompt.
    with page.expect_request(lambda r: r.url.endswith("/v1/chat/completions")) as sent:
        send(page, "again")
    assert [m["content"] for m in sent.value.post_data_json["messages"]] == ["again"]
