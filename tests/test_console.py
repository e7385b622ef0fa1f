"""The web console at /console, end to end in headless Chromium.

A real server (uvicorn on a free loopback port, the embedded default: SQLite, a local
folder, in-process workers) and Debian's `chromium` driven by Playwright. Chromium is
installed by `make browser-deps`; Playwright's own browser download is never used.
Without Chromium the browser tests skip, and fail under CI=true.

Screenshots land in test-artifacts/console/.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.plugins.services import Account, AppHarness, make_settings
from tests.plugins.waiting import JOB_WAIT_S, wait_until

CHROMIUM = os.environ.get("CHORUS_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "console"
CLONE_TIMEOUT_MS = 240_000
AUDIO_TIMEOUT_MS = 120_000


def browser_missing(reason: str) -> None:
    message = f"headless Chromium is not usable: {reason}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true: run `make browser-deps`)")
    pytest.skip(message)


# ---------------------------------------------------------------- the server


@dataclass
class ConsoleServer:
    base_url: str
    harness: AppHarness
    account: Account

    @property
    def console_url(self) -> str:
        return f"{self.base_url}/console"


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture(scope="module")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleServer]:
    import uvicorn

    from app.core.db import dispose_engines
    from app.core.migrate import upgrade
    from app.jobs.queue import reset_queues
    from app.main import create_app
    from app.storage import reset_store_cache

    settings = make_settings(tmp_path_factory.mktemp("console") / "data")
    reset_store_cache()
    upgrade(settings)
    sock = _free_socket()
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + JOB_WAIT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the console test server did not start")
        time.sleep(0.1)
    # make_user only needs the settings; the browser is the client here.
    harness = AppHarness(settings, client=None)  # type: ignore[arg-type]
    try:
        account = harness.make_user("console-user", credits=50_000)
        yield ConsoleServer(f"http://127.0.0.1:{port}", harness, account)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        reset_queues()
        reset_store_cache()
        dispose_engines()


# ---------------------------------------------------------------- the browser


@dataclass
class Chromium:
    """Playwright's driver started once per module; `launch` opens Debian's chromium."""

    driver: Any
    executable: str

    def launch(self, *extra_args: str) -> Any:
        try:
            return self.driver.chromium.launch(
                executable_path=self.executable,
                args=[*CHROMIUM_ARGS, *extra_args],
                headless=True,
            )
        except Exception as exc:
            browser_missing(f"launch failed: {exc}")


@pytest.fixture(scope="module")
def chromium() -> Iterator[Chromium]:
    executable = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    if not executable:
        browser_missing(f"{CHROMIUM} does not exist")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        browser_missing(f"playwright is not installed ({exc})")
    driver = sync_playwright().start()
    try:
        yield Chromium(driver, executable)
    finally:
        driver.stop()


@pytest.fixture(scope="module")
def browser(chromium: Chromium) -> Iterator[Any]:
    launched = chromium.launch()
    yield launched
    launched.close()


def open_tab(browser: Any) -> Any:
    # The page's CSP is enforced (no bypass_csp): a violation would show up as a console error.
    # Hence every wait_for_function predicate here is a function: a bare expression is run with
    # eval, which script-src 'self' rightly refuses.
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    tab = context.new_page()
    tab.set_default_timeout(30_000)
    problems: list[str] = []
    tab.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    tab.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    tab.problems = problems
    return tab


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    tab = open_tab(browser)
    yield tab
    shot(tab, f"{request.node.name}-end")  # the last state, pass or fail
    tab.context.close()


def shot(tab: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    tab.screenshot(path=str(path), full_page=True)
    return path


def sign_in(tab: Any, server: ConsoleServer) -> None:
    tab.goto(server.console_url)
    tab.fill("#api-key", server.account.key)
    tab.click("#signin-submit")
    tab.wait_for_selector("#app:not([hidden])")
    tab.wait_for_selector("#voices-body tr")


def wait_audio_loaded(tab: Any, selector: str, timeout: float = AUDIO_TIMEOUT_MS) -> dict[str, Any]:
    """Waits until the <audio> has data for the current position (readyState >= 2, `loadeddata`)."""
    tab.wait_for_function(
        "sel => { const a = document.querySelector(sel);"
        " return a && a.readyState >= 2 && a.dataset.state === 'loaded'; }",
        arg=selector,
        timeout=timeout,
    )
    return tab.eval_on_selector(
        selector,
        "a => ({readyState: a.readyState, duration: a.duration, src: a.currentSrc})",
    )


def no_page_errors(tab: Any) -> None:
    # Chromium logs failed resource loads as console errors; those would be a real bug here too.
    assert tab.problems == [], tab.problems


# ---------------------------------------------------------------- the tests


@pytest.mark.slow
def test_sign_in_and_browse_voices(page: Any, console_server: ConsoleServer) -> None:
    response = httpx.get(console_server.console_url)
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp and "default-src 'none'" in csp

    page.goto(console_server.console_url)
    page.wait_for_selector("#signin:not([hidden])")
    shot(page, "01-signin")
    page.fill("#api-key", "not-a-key")
    page.click("#signin-submit")
    page.wait_for_function("() => document.getElementById('signin-error').textContent.length > 0")
    assert "not accepted" in page.text_content("#signin-error")
    assert page.evaluate("sessionStorage.length") == 0
    page.problems.clear()  # Chromium logs the refused key's 401

    page.fill("#api-key", console_server.account.key)
    page.click("#signin-submit")
    page.wait_for_selector("#voices-body tr")
    jwt = page.evaluate("sessionStorage.getItem('chorus.console.jwt')")
    assert jwt and jwt.count(".") == 2 and jwt != console_server.account.key
    names = page.locator("#voices-body .voice-name").all_text_contents()
    assert names, "built-in voices are listed"
    assert "of" in page.text_content("#voices-summary")
    shot(page, "02-voices")

    # Filters go to the API as query parameters; a keyword that matches nothing empties the table.
    page.fill("#filter-keyword", "zz-no-such-voice-zz")
    page.click("#voice-filters button[type=submit]")
    page.wait_for_selector("#voices-empty:not([hidden])")
    assert page.locator("#voices-body tr").count() == 0
    page.fill("#filter-keyword", "")
    page.select_option("#filter-type", "STANDARD")
    page.click("#voice-filters button[type=submit]")
    page.wait_for_selector("#voices-body tr")
    assert page.locator("#voices-body tr").count() > 0

    # The session survives a reload (sessionStorage) and sign-out forgets it.
    page.reload()
    page.wait_for_selector("#voices-body tr")
    page.click("#signout")
    page.wait_for_selector("#signin:not([hidden])")
    assert page.evaluate("sessionStorage.getItem('chorus.console.jwt')") is None
    no_page_errors(page)


@pytest.mark.slow
def test_preview_plays(page: Any, console_server: ConsoleServer) -> None:
    sign_in(page, console_server)
    page.locator('#voices-body button[data-action="preview"]:not([disabled])').first.click()
    state = wait_audio_loaded(page, "#preview-audio")
    assert state["readyState"] >= 2 and state["duration"] > 0.5
    assert "/api/v1/files/" in state["src"]
    assert "“" in page.text_content("#preview-label")
    shot(page, "03-preview")
    no_page_errors(page)


@pytest.mark.slow
def test_clone_from_upload(
    page: Any, console_server: ConsoleServer, speech_wav_bytes: bytes, tmp_path: Path
) -> None:
    sample = tmp_path / "my-voice.wav"
    sample.write_bytes(speech_wav_bytes)
    sign_in(page, console_server)
    page.click('a[data-view="clone"]')
    page.wait_for_selector("#view-clone:not([hidden])")
    page.fill("#clone-name", "Console clone")
    page.set_input_files("#clone-file", str(sample))
    page.click("#clone-submit")
    page.wait_for_selector("#clone-result:not([hidden])")
    assert page.text_content("#clone-voice-id").startswith("voice_")
    assert page.text_content("#clone-status") in {"PENDING", "PROCESSING", "COMPLETED"}
    shot(page, "04-clone-pending")
    page.wait_for_function(
        "() => ['COMPLETED', 'FAILED'].includes(document.getElementById('clone-status').textContent)",
        timeout=CLONE_TIMEOUT_MS,
    )
    assert page.text_content("#clone-status") == "COMPLETED", page.text_content("#clone-error")
    similarity = float(page.text_content("#clone-similarity"))
    assert 0 < similarity <= 1
    shot(page, "05-clone-completed")

    # The new voice can be used straight away from Speak.
    page.click("#clone-speak")
    page.wait_for_selector("#view-speak:not([hidden])")
    page.wait_for_function(
        "() => document.getElementById('speak-voice').selectedOptions[0]?.text.startsWith('Console clone')"
    )
    no_page_errors(page)


@pytest.mark.slow
def test_clone_from_microphone_samples(
    chromium: Chromium, console_server: ConsoleServer, speech_wav_bytes: bytes, tmp_path: Path
) -> None:
    """Two samples recorded in the browser (MediaRecorder, WebM) go to the multi-sample route.

    Chromium's fake microphone plays real speech from a WAV file, so the server's VAD accepts it.
    """
    mic = tmp_path / "mic.wav"
    mic.write_bytes(speech_wav_bytes)
    browser = chromium.launch(
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={mic}",
    )
    try:
        tab = open_tab(browser)
        sign_in(tab, console_server)
        tab.click('a[data-view="clone"]')
        tab.fill("#clone-name", "Microphone clone")
        for count in (1, 2):
            tab.click("#rec-start")
            tab.wait_for_selector("#rec-stop:not([disabled])")
            tab.wait_for_timeout(4_500)
            tab.click("#rec-stop")
            tab.wait_for_function("n => document.querySelectorAll('#rec-list li').length === n", arg=count)
        assert tab.locator("#rec-list audio").count() == 2
        with tab.expect_response("**/api/v1/voice/voice-profiles/multi-sample") as sent:
            tab.click("#clone-submit")
        assert sent.value.status == 200, sent.value.text()
        tab.wait_for_selector("#clone-result:not([hidden])")
        shot(tab, "08-clone-microphone")
        tab.wait_for_function(
            "() => ['COMPLETED', 'FAILED'].includes(document.getElementById('clone-status').textContent)",
            timeout=CLONE_TIMEOUT_MS,
        )
        assert tab.text_content("#clone-status") == "COMPLETED", tab.text_content("#clone-error")
        shot(tab, "09-clone-microphone-completed")
        no_page_errors(tab)
    finally:
        browser.close()


def open_speak(page: Any, console_server: ConsoleServer, text: str) -> None:
    """Signed in, on the speak view, with `text` typed."""
    sign_in(page, console_server)
    page.click('a[data-view="speak"]')
    page.wait_for_selector("#speak-voice option", state="attached")
    page.fill("#speak-text", text)


@pytest.mark.slow
def test_speak_streams_audio_and_offers_download(page: Any, console_server: ConsoleServer) -> None:
    text = "Hello from the Chorus console. This sentence is streamed to the browser."
    open_speak(page, console_server, text)
    assert page.text_content("#speak-cost") == str(len(text.encode()))
    page.click("#speak-submit")
    state = wait_audio_loaded(page, "#speak-audio")
    assert state["readyState"] >= 2
    assert state["src"].startswith("blob:")
    page.wait_for_selector("#speak-download:not([hidden])")
    page.wait_for_function("() => document.getElementById('speak-status').textContent.startsWith('Done')")
    # Chromium played the MP3 through Media Source Extensions while it arrived.
    assert page.get_attribute("#speak-audio", "data-delivery") == "stream"
    shot(page, "06-speak-stream")
    with page.expect_download() as download_info:
        page.click("#speak-download")
    downloaded = Path(download_info.value.path())
    head = downloaded.read_bytes()[:3]
    assert head == b"ID3" or head[0] == 0xFF, head
    no_page_errors(page)


# Plays #speak-audio from the start and, every 70 ms until it ends, notes the time and the
# highlighted word (and whether the words before it, and only those, are marked spoken).
PLAY_AND_SAMPLE = """async () => {
  const audio = document.getElementById('speak-audio');
  const words = [...document.querySelectorAll('#speak-words .word')];
  audio.pause();
  audio.currentTime = 0;
  await audio.play();
  const samples = [];
  const began = performance.now();
  while (!audio.ended && performance.now() - began < 30000) {
    await new Promise((resolve) => setTimeout(resolve, 70));
    const lit = document.querySelectorAll('#speak-words .word.current');
    const index = lit.length ? words.indexOf(lit[0]) : -1;
    samples.push({
      time: audio.currentTime,
      lit: lit.length,
      index,
      start: index < 0 ? null : Number(words[index].dataset.start),
      end: index < 0 ? null : Number(words[index].dataset.end),
      spokenOk: index < 0 || words.every((w, i) => w.classList.contains('spoken') === (i < index)),
    });
  }
  return { samples, ended: audio.ended, duration: audio.duration };
}"""


@pytest.mark.slow
def test_speak_highlights_words_as_they_play(page: Any, console_server: ConsoleServer) -> None:
    text = "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background."
    expected = text.split()
    open_speak(page, console_server, text)
    with page.expect_request("**/v1/audio/speech") as sent:
        page.click("#speak-submit")
    assert sent.value.post_data_json["stream_format"] == "sse"  # audio and words in one stream

    # The words arrive with the audio that says them: one span per word of the text, in order.
    page.wait_for_function(
        "n => document.querySelectorAll('#speak-words .word').length === n",
        arg=len(expected),
        timeout=AUDIO_TIMEOUT_MS,
    )
    page.wait_for_function("() => document.getElementById('speak-status').textContent.startsWith('Done')")
    assert page.get_attribute("#speak-audio", "data-delivery") == "stream"
    spans = page.locator("#speak-words .word")
    assert spans.all_text_contents() == expected
    assert page.is_visible("#speak-words")
    starts = [float(s) for s in spans.evaluate_all("ws => ws.map(w => w.dataset.start)")]
    assert starts == sorted(starts) and starts[-1] > 1.0

    played = page.evaluate(PLAY_AND_SAMPLE)
    assert played["ended"], played
    samples = played["samples"]
    lit = [s for s in samples if s["index"] >= 0]
    assert len(lit) >= len(samples) / 2, samples  # a word is lit most of the time it plays
    for sample in samples:
        assert sample["lit"] <= 1 and sample["spokenOk"], sample
    for sample in lit:
        assert sample["start"] - 0.15 <= sample["time"] <= sample["end"] + 0.3, sample
    seen = [s["index"] for s in lit]
    assert seen == sorted(seen), seen  # the highlight only moves forward while it plays
    assert len(set(seen)) >= 3, seen

    # Clicking a word seeks the audio to it (and the highlight follows while paused, too).
    page.evaluate("() => document.getElementById('speak-audio').pause()")
    spans.last.click()
    page.wait_for_function(
        "() => { const ws = document.querySelectorAll('#speak-words .word');"
        " return ws[ws.length - 1].classList.contains('current'); }"
    )
    at = page.evaluate(
        "() => { const ws = document.querySelectorAll('#speak-words .word');"
        " return { time: document.getElementById('speak-audio').currentTime,"
        " start: Number(ws[ws.length - 1].dataset.start),"
        " spoken: document.querySelectorAll('#speak-words .word.spoken').length,"
        " lit: document.querySelectorAll('#speak-words .word.current').length }; }"
    )
    assert abs(at["time"] - at["start"]) < 0.05, at
    assert at["spoken"] == len(expected) - 1 and at["lit"] == 1, at
    shot(page, "08-speak-words")
    no_page_errors(page)


@pytest.mark.slow
def test_speak_as_background_job(page: Any, console_server: ConsoleServer) -> None:
    sign_in(page, console_server)
    page.click('a[data-view="speak"]')
    page.wait_for_selector("#speak-voice option", state="attached")
    text = "This one goes through the job queue."
    page.fill("#speak-text", text)
    page.check('input[name="speak-mode"][value="job"]')
    page.select_option("#speak-format", "wav")
    page.click("#speak-submit")
    state = wait_audio_loaded(page, "#speak-audio")
    assert "/api/v1/files/" in state["src"]
    link = page.get_attribute("#speak-download", "href")
    assert link and "/api/v1/files/" in link
    assert page.get_attribute("#speak-download", "download") == "speech.wav"
    assert "Done" in page.text_content("#speak-status")
    # The job's captions (json) show as the clip's words once it is done.
    page.wait_for_function(
        "n => document.querySelectorAll('#speak-words .word').length === n", arg=len(text.split())
    )
    assert page.locator("#speak-words .word").all_text_contents() == text.split()
    no_page_errors(page)


@pytest.mark.slow
def test_speak_falls_back_to_job_without_speech_route(page: Any, console_server: ConsoleServer) -> None:
    page.route(
        "**/v1/audio/speech",
        lambda route: route.fulfill(
            status=404, content_type="application/json", body='{"detail": "Not Found"}'
        ),
    )
    sign_in(page, console_server)
    page.click('a[data-view="speak"]')
    page.wait_for_selector("#speak-voice option", state="attached")
    page.fill("#speak-text", "Fallback path.")
    page.click("#speak-submit")
    state = wait_audio_loaded(page, "#speak-audio")
    assert "/api/v1/files/" in state["src"]
    assert page.text_content("#speak-status").startswith("Done")
    problems = [p for p in page.problems if "404" not in p]  # the refused speech call is logged
    assert problems == [], problems


@pytest.mark.slow
def test_credits_usage_chart_and_ledger(page: Any, console_server: ConsoleServer) -> None:
    # Some spending first, so the chart and the ledger have something to show.
    spent = httpx.post(
        f"{console_server.base_url}/api/v1/voice/voices/{_first_builtin(console_server)}/generate",
        headers=console_server.account.headers,
        json={"input_text": "Chart me."},
        timeout=60,
    )
    assert spent.status_code == 202, spent.text
    _wait_job(console_server, spent.json()["job_id"])

    sign_in(page, console_server)
    page.click('a[data-view="credits"]')
    page.wait_for_function("() => document.getElementById('credits-available').textContent !== '—'")
    balance = httpx.get(f"{console_server.base_url}/api/v1/credits", headers=console_server.account.headers)
    balance = balance.json()
    shown = page.text_content("#credits-available").replace(",", "").replace("\u202f", "").replace("\xa0", "")
    assert int(shown) == balance["credits"]

    page.wait_for_selector("#usage-svg")
    bars = page.locator("#usage-svg rect.bar")
    assert bars.count() == 30
    heights = [float(h) for h in bars.evaluate_all("bs => bs.map(b => b.getAttribute('height'))")]
    assert max(heights) > 0, "today's generation shows as a bar"
    page.select_option("#usage-period", "7d")
    page.wait_for_function("() => document.querySelectorAll('#usage-svg rect.bar').length === 7")

    ledger = page.locator("#ledger-body tr")
    page.wait_for_function(
        "() => document.querySelectorAll('#ledger-body tr').length > 0 || "
        "!document.getElementById('ledger-note').hidden"
    )
    if ledger.count() == 0:
        assert "not available" in page.text_content("#ledger-note")
    shot(page, "07-credits")
    no_page_errors(page)


@pytest.mark.slow
def test_voice_names_are_text_not_markup(
    page: Any, console_server: ConsoleServer, speech_wav_bytes: bytes
) -> None:
    """A hostile voice name shows as text; nothing from the API becomes markup."""
    hostile = '<img src=x onerror="window.__pwned=1">'
    created = httpx.post(
        f"{console_server.base_url}/api/v1/voice/voice-profiles",
        headers=console_server.account.headers,
        data={"name": hostile, "description": "<b>bold?</b>"},
        files={"file": ("s.wav", speech_wav_bytes, "audio/wav")},
        timeout=60,
    )
    assert created.status_code == 200, created.text
    sign_in(page, console_server)
    page.select_option("#filter-type", "CUSTOM")
    page.click("#voice-filters button[type=submit]")
    page.wait_for_function(
        "name => [...document.querySelectorAll('#voices-body .voice-name')]"
        ".some(n => n.textContent === name)",
        arg=hostile,
    )
    assert page.locator("#voices-body img").count() == 0
    assert page.locator("#voices-body b").count() == 0
    assert page.evaluate("window.__pwned") is None
    no_page_errors(page)


def _first_builtin(server: ConsoleServer) -> str:
    data = httpx.get(
        f"{server.base_url}/api/v1/voice/voice-profiles",
        params={"voice_type": "STANDARD"},
        headers=server.account.headers,
    ).json()
    return data["voices"][0]["voice_id"]


def _wait_job(server: ConsoleServer, job_id: str) -> None:
    status = wait_until(
        lambda: httpx.get(
            f"{server.base_url}/api/v1/voice/tts-jobs/{job_id}/status", headers=server.account.headers
        ).json()["status"],
        lambda status: status in {"completed", "failed"},
        interval=0.3,
    )
    assert status == "completed"


# ---------------------------------------------------------------- without a browser


def test_static_files_are_an_allow_list(embedded: AppHarness) -> None:
    client = embedded.client
    page = client.get("/console")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    served = (("console.js", "text/javascript"), ("console.css", "text/css"), ("icon.svg", "image/svg+xml"))
    for name, kind in served:
        response = client.get(f"/console/static/{name}")
        assert response.status_code == 200 and response.headers["content-type"].startswith(kind)
        assert "content-security-policy" in response.headers
    for bad in ("index.html", "../routes.py", "..%2Froutes.py", "%2e%2e/routes.py", "nope.js", "x.js.bak"):
        assert client.get(f"/console/static/{bad}").status_code == 404, bad
    assert client.get("/console/static/../../app/main.py").status_code == 404


def test_console_needs_no_outside_resources() -> None:
    """Everything is served from this origin: no CDN, no inline script, no innerHTML."""
    from importlib.resources import files

    static = files("app.console").joinpath("static")
    html = static.joinpath("index.html").read_text()
    script = static.joinpath("console.js").read_text()
    for text in (html, script, static.joinpath("console.css").read_text()):
        assert "//cdn" not in text and "https://" not in text
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script and "document.write" not in script
    assert "<script>" not in html and " style=" not in html and "onclick=" not in html
