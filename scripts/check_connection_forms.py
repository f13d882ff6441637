"""Screenshot Airflow's "Add Connection" form for each of this provider's connection types.

Usage (from the repository root): ``.venv/bin/python scripts/check_connection_forms.py [OUT_DIR]``.
Needs the Debian packages ``chromium`` and ``chromium-driver``. Starts an api-server on a free port
with a throwaway SQLite home, drives headless Chromium through chromedriver's W3C WebDriver HTTP API
(standard library only) and saves ``<OUT_DIR>/<conn_type>.png`` (default ``/tmp/forms-shots``), plus the
Extra Fields JSON the form would save, in ``<conn_type>.extra.json``. Look at the PNGs: no field may
show ``null`` and the JSON must hold no ``null`` value.
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from airflow_env import AIRFLOW, airflow_env, free_port, run_logged, start_logged, stop_groups, tail

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without installing it

from airflow_provider_avatar.get_provider_info import get_provider_info  # noqa: E402
from airflow_provider_avatar.services import SERVICES, hook_class  # noqa: E402

MIGRATE_LIMIT = 300.0
READY_LIMIT = 120.0  # seconds for the api-server (and chromedriver) to answer
STEP_LIMIT = 30.0  # seconds for one thing to appear in the browser
#: Credentials typed into the form; the saved connection is read back and checked with the hook.
FORM_SECRET = "form-check-secret"
FORM_LOGIN = "1234567890"
FORM_HOST = "https://gateway.example.test"
#: What the check types into a connection type's required extra fields (the form cannot be saved without).
REQUIRED_SAMPLES = {"region": "ap-singapore", "sdk_app_id": "1400000001"}


def _ref(element: dict[str, str]) -> str:
    """The id in a WebDriver element reference (a one-key object)."""
    (ref,) = element.values()
    return ref


class WebDriver:
    """The few W3C WebDriver commands this script needs, over plain HTTP to chromedriver."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        caps = {"browserName": "chrome", "goog:chromeOptions": {"args": _CHROME_ARGS}}
        self.session = self._send("POST", "/session", {"capabilities": {"alwaysMatch": caps}})["sessionId"]

    def _send(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.load(response)["value"]
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"webdriver {method} {path}: {exc.read().decode(errors='replace')[:500]}") from None

    def cmd(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return self._send(method, f"/session/{self.session}{path}", body)

    def js(self, script: str, *args: Any) -> Any:
        return self.cmd("POST", "/execute/sync", {"script": script, "args": list(args)})

    def wait_js(self, script: str, *args: Any, what: str) -> Any:
        """Poll a script until it returns something truthy (the UI renders asynchronously)."""
        deadline = time.monotonic() + STEP_LIMIT
        while time.monotonic() < deadline:
            if result := self.js(script, *args):
                return result
            time.sleep(0.3)
        raise RuntimeError(f"timed out waiting for {what}")

    def find(self, css: str) -> str:
        return _ref(self.cmd("POST", "/element", {"using": "css selector", "value": css}))

    def type(self, css: str, text: str) -> None:
        self.cmd("POST", f"/element/{self.find(css)}/value", {"text": text})

    def click_text(self, css: str, text: str) -> None:
        """Click the first element matching ``css`` whose visible text is ``text``."""
        for found in self.cmd("POST", "/elements", {"using": "css selector", "value": css}):
            if self.cmd("GET", f"/element/{_ref(found)}/text").strip() == text:
                self.cmd("POST", f"/element/{_ref(found)}/click", {})
                return
        raise RuntimeError(f"no {css} reads {text!r}")

    def fetch_json(self, path: str) -> Any:
        """GET an API path with the browser's session cookie."""
        script = (
            "const done = arguments[arguments.length - 1];"
            "fetch(arguments[0]).then(r => r.json()).then(done, e => done({error: String(e)}));"
        )
        return self.cmd("POST", "/execute/async", {"script": script, "args": [path]})

    def screenshot(self, css: str, path: Path) -> None:
        path.write_bytes(base64.b64decode(self.cmd("GET", f"/element/{self.find(css)}/screenshot")))

    def quit(self) -> None:
        with contextlib.suppress(Exception):
            self._send("DELETE", f"/session/{self.session}")


_CHROME_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1800"]
DIALOG = "[role=dialog]"


def wait_http(url: str, what: str) -> None:
    deadline = time.monotonic() + READY_LIMIT
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=5):
            return
        time.sleep(1)
    raise RuntimeError(f"{what} did not answer at {url} within {READY_LIMIT:.0f}s")


def check_form(wd: WebDriver, base: str, conn_type: str, hook_name: str, out: Path) -> list[str]:
    """Fill, screenshot and save one Add Connection form; return the problems found."""
    conn_id = f"form_check_{conn_type}"
    wd.cmd("POST", "/url", {"url": f"{base}/connections"})
    wd.wait_js("return document.body.innerText.includes('Add Connection')", what="the connections page")
    wd.click_text("button", "Add Connection")
    wd.wait_js(f"return !!document.querySelector('{DIALOG} input[name=connection_id]')", what="the form")
    wd.type(f"{DIALOG} input[name=connection_id]", conn_id)
    wd.type(f"{DIALOG} input[role=combobox]", hook_name)
    wd.type(f"{DIALOG} input[role=combobox]", "\ue007")  # Enter picks the matching type
    wd.wait_js(f"return !!document.querySelector('{DIALOG} input[name=password]')", what="the standard fields")
    wd.type(f"{DIALOG} input[name=password]", FORM_SECRET)
    if wd.js(f"return !!document.querySelector('{DIALOG} input[name=login]')"):
        wd.type(f"{DIALOG} input[name=login]", FORM_LOGIN)
    if SERVICES[conn_type].default_base_url is None:  # no public host: the connection must name one
        wd.type(f"{DIALOG} input[name=host]", FORM_HOST)
    wd.screenshot(DIALOG, out / f"{conn_type}-standard.png")
    wd.click_text(f"{DIALOG} button[aria-expanded]", "Extra Fields")
    wd.wait_js(f"return !!document.querySelector('{DIALOG} [id^=element_]')", what="the extra fields")
    time.sleep(1)  # let the accordion finish opening before the screenshot
    fields = {c["connection-type"]: c["conn-fields"] for c in get_provider_info()["connection-types"]}[conn_type]
    for name, spec in fields.items():
        if "null" not in spec["schema"]["type"]:  # required: the form cannot be saved without it
            wd.type(f"{DIALOG} #element_{name}", REQUIRED_SAMPLES[name])
    wd.screenshot(DIALOG, out / f"{conn_type}-fields.png")
    problems = (
        [f"{conn_type}: a field shows 'null'"]
        if wd.js(f"return document.querySelector('{DIALOG}').innerText.split('\\n').some(l => l.trim() === 'null')")
        else []
    )
    wd.click_text(f"{DIALOG} button[aria-expanded]", "Extra Fields JSON")
    wd.wait_js(f"return document.querySelector('{DIALOG} .view-lines')?.innerText", what="the Extra JSON")
    time.sleep(1)
    wd.screenshot(DIALOG, out / f"{conn_type}-json.png")
    wd.click_text(f"{DIALOG} button", "Save")
    wd.wait_js(f"return !document.querySelector('{DIALOG}')", what="the form to save and close")
    saved = wd.fetch_json(f"/api/v2/connections/{conn_id}")
    # The API masks secret-named values as "***"; the saved extra is otherwise what the form showed.
    extra = json.loads(saved.get("extra") or "{}")
    (out / f"{conn_type}.extra.json").write_text(json.dumps(extra, indent=2) + "\n")
    # A secret field starts unset (null): Airflow shows any value of a secret-named field as "***".
    secret = {name for name, spec in fields.items() if spec["schema"].get("format") == "password"}
    problems += [
        f"{conn_type}: the saved extra holds {name}: null"
        for name, value in extra.items()
        if value is None and name not in secret
    ]
    config = hook_class(conn_type)(conn_id).build_config(
        saved.get("host"), saved.get("port"), saved.get("schema"), saved.get("login"), FORM_SECRET, extra
    )
    print(f"{conn_type}: saved extra {json.dumps(extra)}")
    print(f"{conn_type}: hook reads {config}")
    return problems


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/forms-shots")
    out.mkdir(parents=True, exist_ok=True)
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        print("needs the Debian packages chromium and chromium-driver", file=sys.stderr)
        return 2
    home = Path(tempfile.mkdtemp(prefix="forms-airflow-home-"))
    port, driver_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    (home / "dags").mkdir()
    env = airflow_env(
        home,
        home / "dags",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
        AIRFLOW__API__PORT=str(port),
        AIRFLOW__API__BASE_URL=base,
        AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_hex(32),
    )
    procs = []
    try:
        code = run_logged([*AIRFLOW, "db", "migrate"], home / "migrate.log", env, MIGRATE_LIMIT)
        if code != 0:
            print(f"airflow db migrate exited {code}:\n{tail(home / 'migrate.log')}", file=sys.stderr)
            return 1
        api = [*AIRFLOW, "api-server", "--host", "127.0.0.1", "--port", str(port)]
        procs.append(start_logged(api, home / "api-server.log", env))
        procs.append(start_logged(["chromedriver", f"--port={driver_port}"], home / "chromedriver.log", env))
        wait_http(f"{base}/api/v2/monitor/health", "the api-server")
        wait_http(f"http://127.0.0.1:{driver_port}/status", "chromedriver")
        wd = WebDriver(driver_port)
        problems = []
        try:
            for conn in get_provider_info()["connection-types"]:
                problems += check_form(wd, base, conn["connection-type"], conn["hook-name"], out)
        finally:
            wd.quit()
    finally:
        stop_groups(procs, grace=10)
        shutil.rmtree(home, ignore_errors=True)
    print(f"screenshots and Extra JSON in {out}")
    for problem in problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
