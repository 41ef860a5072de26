"""Open a page in headless Chromium (Debian's package) over the DevTools protocol, for the report test.

Collects what a reader's browser would complain about (uncaught exceptions, console errors, failed
loads) and evaluates one script in the page once it has loaded.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.request import urlopen

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Page:
    def __init__(self, ws) -> None:
        self.ws, self.next_id, self.errors = ws, 0, []

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]
            self._note(msg)

    def wait_for(self, event: str, timeout: float = 60) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            msg = json.loads(self.ws.recv())
            self._note(msg)
            if msg.get("method") == event:
                return
        raise TimeoutError(event)

    def evaluate(self, script: str):
        result = self.call("Runtime.evaluate", expression=script, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        return result["result"].get("value")

    def _note(self, msg: dict) -> None:
        method, p = msg.get("method"), msg.get("params", {})
        if method == "Runtime.exceptionThrown":
            self.errors.append(p["exceptionDetails"].get("exception", {}).get("description", str(p)))
        elif method == "Runtime.consoleAPICalled" and p["type"] in ("error", "assert"):
            self.errors.append(" ".join(str(a.get("value", a.get("description"))) for a in p["args"]))
        elif method == "Log.entryAdded" and p["entry"]["level"] == "error":
            self.errors.append(p["entry"]["text"])


@contextmanager
def open_page(path: Path):
    """``path`` loaded in a fresh headless Chromium; yields a :class:`Page` with the load's errors so far."""
    import websocket

    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        proc = subprocess.Popen(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                f"--user-data-dir={profile}",
                "--remote-debugging-port=0",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its renderer and GPU processes go down with it
        )
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            for _ in range(300):
                if port_file.exists() and port_file.read_text().strip():
                    break
                time.sleep(0.1)
            port = int(port_file.read_text().split()[0])
            targets = json.load(urlopen(f"http://127.0.0.1:{port}/json"))
            url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
            page = Page(websocket.create_connection(url, timeout=120, suppress_origin=True))
            for domain in ("Runtime", "Log", "Page"):
                page.call(f"{domain}.enable")
            page.call("Page.navigate", url=Path(path).resolve().as_uri())
            page.wait_for("Page.loadEventFired")
            yield page
            page.ws.close()
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# Walks a Snakemake report as a reader would: every section, every subsection, the eye of every result,
# and records what the page then shows (an image's decoded width, or the rows of an HTML table).
WALK_REPORT = """(async () => {
  const pause = () => new Promise(r => setTimeout(r, 50));
  const until = async (fn) => {
    for (let i = 0; i < 100; i++) { const v = fn(); if (v) return v; await pause(); }
    return null;
  };
  const link = (text) => Array.from(document.querySelectorAll('a')).find(e => e.innerText.trim() === text);
  const shows = (el, key) => el.getAttribute('src') === results[key].data_uri;
  const shown = [];
  for (const [section, subsections] of Object.entries(categories)) {
    for (const [subsection, keys] of Object.entries(subsections)) {
      const back = link('Results'); if (back) { back.click(); await pause(); }
      (await until(() => link(section))).click();
      const sub = await until(() => link(subsection) || document.querySelector('a[iconname=eye]'));
      if (sub.innerText.trim() === subsection) sub.click();
      await until(() => document.querySelector('a[iconname=eye]'));
      for (const key of keys) {
        const name = results[key].name;  // two results may share a name (claims.html): match the content
        const labels = Object.values(results[key].labels || {}).map(String);
        const row = Array.from(document.querySelectorAll('tr')).find(tr => tr.querySelector('a[iconname=eye]')
          && labels.every(l => Array.from(tr.querySelectorAll('td')).some(td => td.innerText.trim() === l)));
        if (row) row.querySelector('a[iconname=eye]').click();
        const showing = () => Array.from(document.querySelectorAll('img,iframe')).find(e => shows(e, key));
        const el = row && await until(showing);
        const item = {section, subsection, name, shown: !!el};
        if (el && el.tagName === 'IMG') { await el.decode().catch(() => null); item.width = el.naturalWidth; }
        if (el && el.tagName === 'IFRAME') {
          const html = atob(el.getAttribute('src').split('base64,')[1]);
          const text = new TextDecoder().decode(Uint8Array.from(html, c => c.charCodeAt(0)));
          const doc = new DOMParser().parseFromString(text, 'text/html');
          item.rows = doc.querySelectorAll('tbody tr').length;
          item.header = Array.from(doc.querySelectorAll('thead th')).map(th => th.innerText || th.textContent);
        }
        shown.push(item);
      }
    }
  }
  return shown;
})()"""
