"""Browser tests' fixtures: a small simulated world served by uvicorn, and headless Chromium.

The world is simulated once per session (``SimConfig.small()``, ~10 s); the service runs
in a thread on a free port of 127.0.0.1 with the pages mounted. Organisations of the
simulation sign their own events; here each also gets a custodial key so the service can
sign labels and events for them over HTTP. Chromium is the system's (``/usr/bin/chromium``):
no browser is ever downloaded. Without it or Playwright the tests skip, except under
``CI=true``, where they fail.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from api.app import create_app
from api.routes import pages
from api.services import Services
from api.settings import Settings
from ledger import note
from tests.conftest import ROOT, in_ci

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
SCREENSHOTS = ROOT / "var" / "screenshots"
PHONE = {"width": 390, "height": 844}
DEFAULT_TIMEOUT_MS = 10_000
# What the lead adds to api/templates/passport.html (before </head>); until then the
# tests inject exactly these tags into the passport HTML the browser receives.
PASSPORT_TAGS = (
    '<link rel="stylesheet" href="/static/passport.css">\n'
    '<script type="module" src="/static/passport.js"></script>\n'
)
_DATA = re.compile(r'(<script type="application/json" id="passport-data">)(.*?)(</script>)', re.S)


def _require_browser() -> None:
    """Skip (or, under CI, fail) unless Playwright and the system's Chromium are there."""
    missing = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("Playwright for Python")
    if not CHROMIUM.exists():
        missing.append(str(CHROMIUM))
    if missing:
        reason = f"browser tests need {' and '.join(missing)}"
        if in_ci():
            pytest.fail(f"CI=true: {reason}")
        pytest.skip(reason)


@dataclass(frozen=True)
class World:
    """The running service: its address, its services, and API keys by name."""

    base_url: str
    services: Services
    keys: dict[str, str]

    def get(self, path: str, key: str | None = None, **params: Any) -> httpx.Response:
        headers = {} if key is None else {"Authorization": f"Bearer {key}"}
        return httpx.get(self.base_url + path, headers=headers, params=params, timeout=30)

    def post(
        self, path: str, key: str, body: Any, *, idempotency_key: str | None = None
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        return httpx.post(self.base_url + path, headers=headers, json=body, timeout=30)


def _simulate(tmp: Path) -> tuple[str, Path]:
    from trace.simulate import SimClock, SimConfig, open_simulation_tracer, simulate

    url = f"sqlite:///{tmp / 'world.db'}"
    signer = note.Signer.generate("suyuan-e2e-log")
    key_file = tmp / "log.key"
    key_file.write_text(signer.to_string() + "\n")
    tracer = open_simulation_tracer(url, clock=SimClock(), signer=signer)
    try:
        simulate(tracer, SimConfig.small())
    finally:
        tracer.close()
    return url, key_file


def _keys(services: Services) -> dict[str, str]:
    """An API key per organisation (by id) and an auditor's; custodial keys for all."""
    from schemas.actors import Actor, Role

    keys: dict[str, str] = {}
    with services.writing() as tracer:
        for actor in sorted(tracer.world.actors.values(), key=lambda a: a.id):
            signer = services.custodial.create(actor.id)
            tracer.add_key(actor.id, signer.verifier.to_string())
            keys[actor.id] = services.keys.issue(actor.id, label="e2e").token
        auditor = Actor(id="e2e-auditor", name="Audit", role=Role.AUDITOR, region="110000")
        tracer.register_actor(auditor)
    keys["auditor"] = services.keys.issue(auditor.id, label="e2e").token
    return keys


class _Server:
    """uvicorn on an already bound socket, in a thread (no signal handlers off the main one)."""

    def __init__(self, app: Any, sock: socket.socket) -> None:
        import uvicorn

        config = uvicorn.Config(
            app, log_level="warning", access_log=False, ws="none", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, daemon=True
        )

    def __enter__(self) -> _Server:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the service did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """The service over a small simulated world, listening on a free port of 127.0.0.1."""
    _require_browser()
    url, key_file = _simulate(tmp_path_factory.mktemp("e2e"))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        settings = Settings(
            database_url=url, log_key_file=key_file, base_url=base_url,
            rate_limit_per_minute=100_000,
        )  # fmt: skip
        services = Services.start(settings)
        try:
            keys = _keys(services)
            app = create_app(settings, services=services)
            if not any(getattr(route, "path", None) == "/scan" for route in app.routes):
                app.include_router(pages.router)  # until api/app.py mounts the pages
            with _Server(app, sock):
                yield World(base_url, services, keys)
        finally:
            services.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Chromium, the system's own."""
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any, world: World) -> Iterator[Any]:
    """A phone-sized page; console errors of the pages fail the test."""
    context = browser.new_context(viewport=PHONE, locale="en-GB", base_url=world.base_url)
    tab = context.new_page()
    tab.set_default_timeout(DEFAULT_TIMEOUT_MS)
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    # The browser logs every 4xx answer as an error, refusals the pages expect included;
    # a static file that fails to load is a real error.
    tab.on(
        "response",
        lambda r: (
            errors.append(f"{r.status} {r.url}")
            if r.status >= 400 and urlsplit(r.url).path.startswith("/static/")
            else None
        ),
    )
    try:
        yield tab
    finally:
        context.close()
    assert not errors, f"errors in the page: {errors}"


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


def flip_base64(text: str) -> str:
    """``text`` with its first character changed to another base64 character."""
    return ("B" if text[0] == "A" else "A") + text[1:]


def serve_passport(page: Any, tamper: Callable[[dict[str, Any]], None] | None = None) -> None:
    """Serve ``/p/...`` pages with :data:`PASSPORT_TAGS` (if the template lacks them) and,
    with ``tamper``, the embedded passport JSON changed by it."""

    def handle(route: Any) -> None:
        response = route.fetch()
        body = response.text()
        if "/static/passport.js" not in body:
            body = body.replace("</head>", PASSPORT_TAGS + "</head>", 1)
        if tamper is not None:
            match = _DATA.search(body)
            assert match, "the passport page embeds no passport JSON"
            doc = json.loads(match.group(2))
            tamper(doc)
            blob = json.dumps(doc, ensure_ascii=False)
            blob = blob.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            body = body[: match.start(2)] + blob + body[match.end(2) :]
        route.fulfill(response=response, body=body)

    page.route(lambda url: urlsplit(url).path.startswith("/p/"), handle)
