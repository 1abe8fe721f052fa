"""The HTML report in a real browser: headless Chromium loads the page rendered from the committed fixtures.

Checked: no console errors, no uncaught exceptions, no request for anything but the page itself (self-contained),
every plot drawn with a non-empty size, the machine details folded away. Chromium is driven over its DevTools
protocol through `--remote-debugging-pipe` (JSON messages separated by NUL bytes on file descriptors 3 and 4), so
no websocket client or other package is needed. Skips where no Chromium is installed (Debian: `apt-get install
chromium`; `.ci/run` installs it).
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from mnbench.report import load_report
from mnbench.report.html import to_html

RESULTS = Path(__file__).parent / "fixtures" / "results"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TIMEOUT_S = 60  # a cold start on a loaded 2-core machine takes a few seconds; this is only a hang guard

# Top-level plots only (an SVG's own nested <svg> elements are part of it), with their rendered size.
_PLOT_SIZES = """JSON.stringify([...document.querySelectorAll('img, svg')].filter(e => !e.parentElement.closest('svg'))
  .map(e => { const r = e.getBoundingClientRect();
              return {figure: e.closest('figure') ? e.closest('figure').id : null, width: r.width, height: r.height,
                      decoded: e.tagName.toLowerCase() !== 'img' || e.naturalWidth > 0}; }))"""
_PAGE_FACTS = """JSON.stringify({
  figures: document.querySelectorAll('figure').length,
  answer: (document.querySelector('#answer') || {innerText: ''}).innerText,
  details: [...document.querySelectorAll('details')].map(d => ({open: d.open,
      tableVisible: d.querySelector('table').checkVisibility(),
      height: d.getBoundingClientRect().height,
      summaryHeight: d.querySelector('summary').getBoundingClientRect().height}))})"""


def _browser() -> str | None:
    return next((path for path in map(shutil.which, BROWSERS) if path), None)


class DevToolsPipe:
    """A minimal DevTools protocol client over Chromium's `--remote-debugging-pipe`."""

    def __init__(self, binary: str, profile: Path) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def wire_fds() -> None:  # in the child: fd 3 reads commands, fd 4 writes replies
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)

        self.process = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
             "--disable-extensions", "--disable-background-networking", f"--user-data-dir={profile}",
             "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            preexec_fn=wire_fds, close_fds=False)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """Send one command and wait for its reply; events that arrive meanwhile are kept in `events`."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._receive()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise AssertionError(f"{method} failed: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str) -> dict:
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            event = self._receive()
            self.events.append(event)
            if event.get("method") == method:
                return event

    def _receive(self) -> dict:
        deadline = time.monotonic() + TIMEOUT_S
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._from_browser], [], [], max(deadline - time.monotonic(), 0))
            chunk = os.read(self._from_browser, 1 << 16) if ready else b""
            if not chunk:
                raise AssertionError("Chromium stopped answering" + ("" if ready else f" for {TIMEOUT_S} s")
                                     + f"; its stderr: {self._stderr_tail()}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def _stderr_tail(self) -> str:
        if self.process.poll() is None:
            return "(still running)"
        return self.process.stderr.read().decode(errors="replace")[-2000:]

    def close(self) -> None:
        try:
            os.write(self._to_browser, json.dumps({"id": 0, "method": "Browser.close"}).encode() + b"\0")
            self.process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        finally:
            os.close(self._to_browser)
            os.close(self._from_browser)
            self.process.stderr.close()


@pytest.fixture(scope="module")
def loaded_page(tmp_path_factory):
    """The fixture report opened in headless Chromium: (DevTools client, session id, page URL)."""
    binary = _browser()
    if binary is None:
        pytest.skip("no Chromium found (tried " + ", ".join(BROWSERS) + "); install Debian's `chromium` package "
                    "to run the real-browser test of the HTML report")
    folder = tmp_path_factory.mktemp("html-browser")
    page = folder / "report.html"
    page.write_text(to_html(load_report([RESULTS])), encoding="utf-8")
    browser = DevToolsPipe(binary, folder / "profile")
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.send(f"{domain}.enable", session=session)
        browser.send("Page.navigate", {"url": page.as_uri()}, session=session)
        browser.wait_for("Page.loadEventFired")
        yield browser, session, page.as_uri()
    finally:
        browser.close()


def _evaluate(browser: DevToolsPipe, session: str, expression: str):
    result = browser.send("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=session)
    assert "exceptionDetails" not in result, result
    return json.loads(result["result"]["value"])


def test_page_loads_without_console_errors_or_outside_requests(loaded_page):
    browser, session, url = loaded_page
    _evaluate(browser, session, "JSON.stringify(document.readyState)")  # collect what arrived up to now
    events = browser.events
    exceptions = [e["params"] for e in events if e.get("method") == "Runtime.exceptionThrown"]
    console_errors = [e["params"] for e in events if e.get("method") == "Runtime.consoleAPICalled"
                      and e["params"].get("type") in ("error", "assert")]
    log_errors = [e["params"]["entry"] for e in events if e.get("method") == "Log.entryAdded"
                  and e["params"]["entry"].get("level") == "error"]
    assert not (exceptions or console_errors or log_errors), (exceptions, console_errors, log_errors)
    requested = {e["params"]["request"]["url"] for e in events if e.get("method") == "Network.requestWillBeSent"}
    assert requested == {url}  # the page itself and nothing else: self-contained
    assert not [e for e in events if e.get("method") == "Network.loadingFailed"]


def test_every_plot_has_a_rendered_size(loaded_page):
    browser, session, _ = loaded_page
    plots = _evaluate(browser, session, _PLOT_SIZES)
    facts = _evaluate(browser, session, _PAGE_FACTS)
    # speedup, latency and profile from these fixtures, plus a roofline plot per device where that module draws one
    assert len(plots) >= 3 and len(plots) == facts["figures"]
    for plot in plots:
        assert plot["figure"], plot  # every plot sits in a captioned figure
        assert plot["width"] > 100 and plot["height"] > 100 and plot["decoded"], plot


def test_answer_is_shown_and_machine_details_are_folded(loaded_page):
    browser, session, _ = loaded_page
    facts = _evaluate(browser, session, _PAGE_FACTS)
    assert "keeps" in facts["answer"] and "MAC saving" in facts["answer"]
    assert len(facts["details"]) == 2  # one per machine of the fixtures
    for details in facts["details"]:
        assert not details["open"] and not details["tableVisible"]
        assert 0 < details["summaryHeight"] == details["height"]  # folded: only its one line takes room
