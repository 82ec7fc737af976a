#!/usr/bin/env python3
"""The demo page of `kinglet serve --http`, in a real headless Chromium.

Usage: tests/browser/demo_page.py KINGLET_BINARY [SCREENSHOT_DIR]

Starts `kinglet serve --http 127.0.0.1:0` with the shipped sentiment model, opens `/` in
Debian's Chromium (driven over the DevTools protocol on a pipe: standard library only), types a
review into the text box, clicks "Classify" with the mouse, waits for the label and checks it
against `kinglet classify`; types a question for the shipped embedding model, clicks "Embed"
and checks the vector's head against `kinglet embed`; then the DLinear forecaster: uploads
examples/sensors.csv into the file input, clicks "Forecast" and waits for the plot. Screenshots
of both pages are written to SCREENSHOT_DIR (default: a temporary directory). Exit 0 when both
work, 1 with the reason otherwise.
"""

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1000,900", "--remote-debugging-pipe",
]


def fail(message):
    print(f"demo page: FAILED: {message}", file=sys.stderr)
    sys.exit(1)


class Kinglet:
    """`kinglet serve --http 127.0.0.1:0 --model MODEL`, its address read from its stderr."""

    def __init__(self, binary, model):
        self.proc = subprocess.Popen(
            [binary, "serve", "--http", "127.0.0.1:0", "--model", model],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        line = self.proc.stderr.readline()
        match = re.search(r"http://[0-9.]+:[0-9]+", line)
        if not match:
            fail(f"serve --http did not say where it listens: {line!r}")
        self.base = match.group(0)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


class Chromium:
    """Headless Chromium spoken to over --remote-debugging-pipe (fd 3 in, fd 4 out)."""

    def __init__(self, binary):
        self.profile = tempfile.mkdtemp(prefix="kinglet-chromium-")
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()

        def wire():
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        self.proc = subprocess.Popen(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(3, 4), preexec_fn=wire)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.buffer = b""
        self.next_id = 0
        self.session = None

    def send(self, method, params=None, session=True):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self.to_chrome, json.dumps(message).encode() + b"\0")
        while True:
            reply = self.read()
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    fail(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def read(self):
        while b"\0" not in self.buffer:
            chunk = os.read(self.from_chrome, 1 << 16)
            if not chunk:
                fail("Chromium closed the DevTools pipe")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def open(self, url):
        target = self.send("Target.createTarget", {"url": url}, session=False)["targetId"]
        self.session = self.send("Target.attachToTarget",
                                 {"targetId": target, "flatten": True}, session=False)["sessionId"]

    def evaluate(self, expression):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        if "exceptionDetails" in result:
            fail(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression, what, seconds=60):
        deadline = time.time() + seconds
        while time.time() < deadline:
            # the page may not have loaded yet: a missing element is "not yet"
            value = self.evaluate(f"(() => {{ try {{ return {expression}; }} catch (e) {{ return null; }} }})()")
            if value:
                return value
            time.sleep(0.1)
        error = self.evaluate("document.getElementById('error')?.textContent")
        fail(f"no {what} after {seconds} s (page error: {error!r})")

    def click(self, element_id):
        box = self.evaluate(
            f"(() => {{ const r = document.getElementById('{element_id}').getBoundingClientRect();"
            " return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent",
                      {"type": kind, "x": box[0], "y": box[1], "button": "left", "clickCount": 1})

    def screenshot(self, path):
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def close(self):
        try:
            self.send("Browser.close", session=False)
        except SystemExit:
            pass
        self.proc.wait(timeout=30)
        shutil.rmtree(self.profile, ignore_errors=True)


def classify_page(binary, browser_bin, shots):
    text = "a gorgeous, moving film with a wonderful cast"
    cli = subprocess.run([binary, "classify", "--json", "--model", os.path.join(ROOT, "models", "sentiment.kinglet"), text],
                         capture_output=True, text=True, check=True)
    expected = json.loads(cli.stdout)
    server = Kinglet(binary, os.path.join(ROOT, "models", "sentiment.kinglet"))
    browser = Chromium(browser_bin)
    try:
        browser.open(server.base + "/")
        browser.wait_for("!document.getElementById('classifier').classList.contains('hidden')",
                         "classifier section (the page reads /v1/model)")
        browser.evaluate("document.getElementById('text').focus()")
        browser.send("Input.insertText", {"text": text})
        browser.click("classify")
        label = browser.wait_for("document.getElementById('label').textContent", "label")
        bars = browser.evaluate("document.querySelectorAll('#scores .bar').length")
        browser.screenshot(os.path.join(shots, "demo-classify.png"))
    finally:
        browser.close()
        server.stop()
    want = f"{expected['label']} {expected['score']:.4f}"
    if label != want:
        fail(f"the page shows {label!r}; kinglet classify says {want!r}")
    if bars != len(expected["scores"]):
        fail(f"{bars} score bars for {len(expected['scores'])} labels")
    print(f"demo page: typed {text!r}, clicked Classify, the page shows {label!r} "
          f"(kinglet classify: {want!r}) with {bars} score bars")


def embed_page(binary, browser_bin, shots):
    text = "where is the nearest exit"
    model = os.path.join(ROOT, "models", "minilm-embed.kinglet")
    cli = subprocess.run([binary, "embed", "--json", "--model", model, text],
                         capture_output=True, text=True, check=True)
    expected = json.loads(cli.stdout)
    server = Kinglet(binary, model)
    browser = Chromium(browser_bin)
    try:
        browser.open(server.base + "/")
        browser.wait_for("!document.getElementById('embedder').classList.contains('hidden')",
                         "embedder section")
        browser.evaluate("document.getElementById('etext').focus()")
        browser.send("Input.insertText", {"text": text})
        browser.click("embed")
        shown = browser.wait_for("document.getElementById('vector').textContent", "vector")
        browser.screenshot(os.path.join(shots, "demo-embed.png"))
    finally:
        browser.close()
        server.stop()
    head = " ".join(f"{v:.4f}" for v in expected["embedding"][:8])
    want = f"{expected['dimensions']} values: {head} … ({expected['tokens']} tokens)"
    if shown != want:
        fail(f"the page shows {shown!r}; kinglet embed says {want!r}")
    print(f"demo page: typed {text!r}, clicked Embed, the page shows {shown!r}")


def forecast_page(binary, browser_bin, shots):
    server = Kinglet(binary, os.path.join(ROOT, "models", "etth1-dlinear.kinglet"))
    browser = Chromium(browser_bin)
    try:
        browser.open(server.base + "/")
        browser.wait_for("!document.getElementById('forecaster').classList.contains('hidden')",
                         "forecaster section")
        document = browser.send("DOM.getDocument")["root"]["nodeId"]
        node = browser.send("DOM.querySelector", {"nodeId": document, "selector": "#csv"})["nodeId"]
        browser.send("DOM.setFileInputFiles",
                     {"nodeId": node, "files": [os.path.join(ROOT, "examples", "sensors.csv")]})
        browser.click("forecast")
        lines = browser.wait_for("document.querySelectorAll('#plot svg polyline, #plot svg path').length",
                                 "forecast plot")
        meta = browser.evaluate("document.getElementById('fmeta').textContent")
        browser.screenshot(os.path.join(shots, "demo-forecast.png"))
    finally:
        browser.close()
        server.stop()
    if "96 steps" not in meta:
        fail(f"forecast summary {meta!r}")
    print(f"demo page: uploaded examples/sensors.csv, clicked Forecast, the page draws the plot "
          f"({lines} lines) and says {meta!r}")


def main():
    if len(sys.argv) < 2:
        fail("usage: demo_page.py KINGLET_BINARY [SCREENSHOT_DIR]")
    binary = os.path.abspath(sys.argv[1])
    shots = sys.argv[2] if len(sys.argv) > 2 else tempfile.mkdtemp(prefix="kinglet-shots-")
    os.makedirs(shots, exist_ok=True)
    browser_bin = shutil.which("chromium") or fail("chromium is not installed (apt install chromium)")
    classify_page(binary, browser_bin, shots)
    embed_page(binary, browser_bin, shots)
    forecast_page(binary, browser_bin, shots)
    print(f"demo page: screenshots in {shots}")


if __name__ == "__main__":
    main()
