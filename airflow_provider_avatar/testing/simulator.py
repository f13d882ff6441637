"""A loopback simulator of the services' APIs, for tests, example DAGs, the demo and benchmarks.

One aiohttp server (two ports: API and file host, so downloads cross origins like in production)
runs in a background thread or as ``python -m airflow_provider_avatar.testing.simulator``.
Each service lives under ``/<service>/...`` (TRTC, whose SDK always posts to ``/``, serves ``POST /``
with an ``X-TC-Action`` header) and is implemented in ``sim_<service>.py``.

It offers per-task scripted timelines, fault injection (error rate, 429 with Retry-After,
latency, HTML error bodies, connection resets, read timeouts, truncated downloads), a request
log for assertions, real auth checks, and signed expiring file URLs with Range support.
Control it from Python (``Simulator``) or over HTTP (``/_sim/...``) when it runs in another process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import importlib.resources
import json
import logging
import random
import shlex
import signal
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from aiohttp import web

DEFAULT_API_KEY = "sim-api-key"
#: ``--log-requests`` writes one line per request here (never a header, query string or signature).
request_log = logging.getLogger("airflow_provider_avatar.testing.simulator.requests")
FAULT_KINDS = ("502", "503", "504", "429", "reset", "timeout", "html")
#: Faults only asked for by name (not in the default mix): a 200 whose body is empty or not the
#: service's shape (a misbehaving gateway).
BODY_FAULT_KINDS = ("empty", "malformed")
#: Remote histories every simulated service scripts with ``ServiceSim.script`` (or declares not
#: applicable, with why, in ``ServiceSim.not_applicable``):
#: ``succeeds`` reaches the service's default target state (a result, or a live stream);
#: ``fails`` ends in the service's failure; ``no_artifact`` finishes without a result;
#: ``unknown_then_succeeds`` answers a status the client does not know first; ``not_listed_then_succeeds``
#: answers "not found" for a moment after its create; ``gone_after_seen`` is seen, then no longer found;
#: ``long_running`` outlasts any test wait; ``never_exists`` is an id the service never issued.
HISTORIES = (
    "succeeds",
    "fails",
    "no_artifact",
    "unknown_then_succeeds",
    "not_listed_then_succeeds",
    "gone_after_seen",
    "long_running",
    "never_exists",
)
#: An id no simulated service ever issues.
NEVER_ISSUED_ID = "never-issued-task-1"


def sample_video() -> bytes:
    """A small, real, playable MP4 (H.264 + AAC, 2 s, 160x120)."""
    return (importlib.resources.files("airflow_provider_avatar.testing") / "data" / "sample.mp4").read_bytes()


@dataclass
class Faults:
    """Fault injection for one service's API (or ``files`` for the file host)."""

    error_rate: float = 0.0
    kinds: tuple[str, ...] = FAULT_KINDS
    retry_after: float = 1.0
    latency: float = 0.0
    timeout_delay: float = 5.0
    truncate_downloads: bool = False
    seed: int | None = None
    #: Fault only the service's status reads (what a waiting sensor or trigger sends), never its
    #: creates, drives or stops: "30% of status polls fail" without touching the writes.
    status_reads_only: bool = False

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(FAULT_KINDS) - set(BODY_FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {FAULT_KINDS + BODY_FAULT_KINDS}")
        self.kinds = tuple(self.kinds)
        self._rng = random.Random(self.seed)

    def draw(self) -> str | None:
        if self.error_rate > 0 and self._rng.random() < self.error_rate:
            return self._rng.choice(self.kinds)
        return None


@dataclass(frozen=True)
class RequestRecord:
    service: str
    method: str
    path: str
    status: int
    at: float
    authorization: str | None = field(repr=False)
    host: str
    fault: str | None = None
    #: A status read (what waits send); every other request to a service is a write or a create.
    read: bool = False


class SimState:
    """Shared by the service modules: clock, faults, request log, file signing."""

    def __init__(self, *, api_keys: Mapping[str, str], url_ttl: float, clock: Callable[[], float]) -> None:
        self.api_keys = dict(api_keys)
        self.url_ttl = url_ttl
        self.clock = clock
        self.faults: dict[str, Faults] = {}
        self.requests: list[RequestRecord] = []
        self.record = True
        #: Log one line per request to ``request_log`` (``--log-requests``).
        self.log_requests = False
        #: Seconds a create's answer is held after the task was created (a create "in flight":
        #: landed and billed, its caller not told yet), per service; see ``ServiceSim.is_create``.
        self.create_answer_delay: dict[str, float] = {}
        self._create_releases: dict[str, asyncio.Event] = {}
        self.counts: dict[str, int] = {}
        #: Requests being answered now (a test waits for 0 before counting what arrived).
        self.in_flight = 0
        self.file_base_url = ""
        self.api_base_url = ""
        self._secret = uuid.uuid4().hex.encode()
        self._signatures: dict[tuple[str, int], str] = {}

    def key_for(self, service: str) -> str:
        return self.api_keys.get(service, DEFAULT_API_KEY)

    async def hold_create_answer(self, service: str, seconds: float) -> None:
        """Wait ``seconds``, or less if ``release_create_answers`` is called meanwhile."""
        release = self._create_releases.setdefault(service, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(release.wait(), seconds)

    def release_create_answers(self, service: str) -> None:
        """Answer the held creates of ``service`` now (call on the simulator's event loop)."""
        release = self._create_releases.pop(service, None)
        if release is not None:
            release.set()

    # -- file host --------------------------------------------------------------------------
    def sign(self, name: str, expires: float) -> str:
        # Memoized: thousands of status reads a second sign the same frame names within a second
        # (the HMACs were ~15% of the simulator's CPU at 5,000 waiting triggers).
        key = (name, int(expires))
        signature = self._signatures.get(key)
        if signature is None:
            if len(self._signatures) >= 4096:
                self._signatures.clear()
            signature = hmac.new(self._secret, f"{name}:{key[1]}".encode(), hashlib.sha256).hexdigest()
            self._signatures[key] = signature
        return signature

    def file_url(self, name: str, ttl: float | None = None) -> str:
        """A signed, expiring URL on the file host (the query string is the signature)."""
        expires = int(self.clock() + (self.url_ttl if ttl is None else ttl))
        return f"{self.file_base_url}/files/{name}?Expires={expires}&Signature={self.sign(name, expires)}"


class ServiceSim:
    """Base of one simulated service: routes under ``/<name>/`` sharing the ``SimState``."""

    name: str = ""
    #: Where the API lives under the simulator's base URL: ``None`` is ``/<name>``; ``""`` is the root,
    #: for an SDK that always posts to ``/`` (the service then claims its requests with ``serves_root``).
    url_path: str | None = None
    #: Connection extras that take the service's key (secrets), e.g. TRTC's ``sdk_secret_key``.
    secret_extras: tuple[str, ...] = ()
    #: Histories (``HISTORIES``) and reliability checks (``"check-9"``...) that do not apply to this
    #: service, each with the reason; the reliability suite skips exactly these, saying why.
    not_applicable: Mapping[str, str] = {}
    #: The hook method that stops a task (streams), or None when the service has nothing to stop.
    stop_method: str | None = None
    #: Whether every answer, errors included, carries a request id (clients must name it in errors).
    request_ids: bool = False
    #: Why a second create is harmless here (an idempotency key), or None: then a create whose
    #: answer was lost must never be sent again.
    idempotent_create: str | None = None

    def __init__(self, state: SimState, default_duration: float = 3.0) -> None:
        self.state = state
        self.default_duration = default_duration
        #: Task id -> simulated time before which its status reads answer "not found" (not listed yet).
        self.unlisted_until: dict[str, float] = {}

    def listed(self, task_id: str) -> bool:
        """Whether status reads may see ``task_id`` yet (see ``unlisted_until``)."""
        until = self.unlisted_until.get(task_id)
        return until is None or self.state.clock() >= until

    def script(self, history: str, *, duration: float = 1.0) -> str:
        """Set up a remote task that follows ``history`` (one of ``HISTORIES``); returns its remote task id.

        ``duration``: seconds until the task reaches its outcome. Raises ``LookupError`` with the
        reason for a history in ``not_applicable``.
        """
        if history not in HISTORIES:
            raise ValueError(f"unknown history {history!r}; known: {HISTORIES}")
        if history in self.not_applicable:
            raise LookupError(self.not_applicable[history])
        if history == "never_exists":
            return NEVER_ISSUED_ID
        if history == "not_listed_then_succeeds":
            task_id = self._script("succeeds", duration)
            self.unlisted_until[task_id] = self.state.clock() + duration / 2
            return task_id
        return self._script(history, duration)

    def _script(self, history: str, duration: float) -> str:
        """``script`` for the histories that need the service's own timelines."""
        raise NotImplementedError

    def create_call(self) -> tuple[str, dict[str, Any]]:
        """(hook method, keyword arguments) that create one task this simulator accepts."""
        raise NotImplementedError

    def refuse_next_create(self) -> None:
        """Answer the next create with the service's own permanent refusal (an invalid parameter)."""
        raise NotImplementedError

    def bounded_lifetime(self, task_id: str) -> float | None:
        """Seconds a created stream can live at most without a stop (its TTL), or None if unbounded."""
        return None

    def routes(self) -> list[web.RouteDef]:
        raise NotImplementedError

    def reset(self) -> None:
        """Forget all tasks."""

    def reset_all(self) -> None:
        self.unlisted_until.clear()
        self.reset()

    @property
    def login(self) -> str | None:
        """The account id a client signs in with besides its key (e.g. ZEGO's AppId), for ``info()``."""
        return None

    def summary(self) -> dict[str, Any]:
        """A few live counters for ``info()`` (e.g. tasks still billable)."""
        return {}

    @property
    def path(self) -> str:
        return f"/{self.name}" if self.url_path is None else self.url_path

    def serves_root(self, request: web.BaseRequest) -> bool:
        """Whether a request to ``/`` is for this service (only asked when ``url_path`` is ``""``)."""
        return False

    def is_status_read(self, request: web.BaseRequest) -> bool:
        """Whether ``request`` reads a task's status (what waits send), for ``Faults.status_reads_only``."""
        return False

    def is_create(self, request: web.BaseRequest) -> bool:
        """Whether ``request`` creates a billed task (for ``Simulator.hold_create_answers``)."""
        return False

    @property
    def public_extra(self) -> dict[str, Any]:
        """Connection extras a client needs besides URL, login and key, none of them secret (for ``info()``)."""
        return {}

    def connection_extra(self, key: str) -> dict[str, Any]:
        """Every connection extra this service needs: ``public_extra`` plus ``secret_extras`` set to ``key``."""
        return {**self.public_extra, **dict.fromkeys(self.secret_extras, key)}


def _load_services(state: SimState, default_duration: float) -> dict[str, ServiceSim]:
    """One simulated service per row of the service registry."""
    from airflow_provider_avatar.services import SERVICES, load

    return {key: load(row.simulator_path)(state, default_duration) for key, row in SERVICES.items()}


def _service_of(request: web.BaseRequest, services: Mapping[str, ServiceSim]) -> str:
    """The service a request is for: the first path segment, or a root service that claims it."""
    first = request.path.lstrip("/").split("/", 1)[0]
    if first:
        return first
    for name, sim in services.items():
        if sim.url_path == "" and sim.serves_root(request):
            return name
    return "root"


def _make_middleware(state: SimState, services: Mapping[str, ServiceSim]) -> Callable[..., Any]:
    """Log each request and inject the service's faults before its handler runs."""

    @web.middleware
    async def middleware(request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        service = _service_of(request, services)
        arrived = state.clock()  # what a server's rate window counts
        started = time.perf_counter()
        fault = None
        status = 0
        sim = services.get(service)
        state.in_flight += 1
        try:
            faults = state.faults.get(service) if service != "_sim" else None
            if faults is not None:
                if faults.latency:
                    await asyncio.sleep(faults.latency)
                if service != "files" and (not faults.status_reads_only or (sim and sim.is_status_read(request))):
                    fault = faults.draw()
            response: web.StreamResponse = await (_inject(fault, faults) if fault and faults else handler(request))
            status = response.status
            hold = state.create_answer_delay.get(service)
            if hold and fault is None and (sim := services.get(service)) is not None and sim.is_create(request):
                await state.hold_create_answer(service, hold)  # the task exists; its caller hears of it later
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            state.in_flight -= 1
            state.counts[service] = state.counts.get(service, 0) + 1
            if state.record and service != "_sim":
                state.requests.append(
                    RequestRecord(
                        service,
                        request.method,
                        request.path_qs,
                        status,
                        arrived,
                        request.headers.get("Authorization"),
                        request.host,
                        fault,
                        bool(sim is not None and sim.is_status_read(request)),
                    )
                )
            if state.log_requests:
                _log_request(request, status, fault, time.perf_counter() - started)

    return middleware


def _log_request(request: web.Request, status: int, fault: str | None, seconds: float) -> None:
    # The path only: query strings carry signatures (file URLs, ZEGO); ZEGO's Action is the one
    # query parameter shown, as its path alone does not say what was called (TRTC's is a header).
    action = request.query.get("Action") or request.headers.get("X-TC-Action")
    request_log.info(
        "%s %s%s -> %s fault=%s %.1f ms",
        request.method,
        request.path,
        f" Action={action}" if action else "",
        status or "-",
        fault or "-",
        seconds * 1000,
    )


async def _inject(fault: str, faults: Faults) -> web.StreamResponse:
    if fault == "429":
        return web.json_response(
            {"error": "rate limited"}, status=429, headers={"Retry-After": f"{faults.retry_after:g}"}
        )
    if fault == "html":
        return web.Response(
            status=502, content_type="text/html", text="<html><body><h1>502 Bad Gateway</h1>nginx</body></html>"
        )
    if fault == "timeout":
        await asyncio.sleep(faults.timeout_delay)
        return web.json_response({"error": "late"}, status=504)
    if fault == "reset":
        raise _Reset()
    if fault == "empty":
        return web.Response(status=200, content_type="application/json", body=b"")
    if fault == "malformed":
        return web.json_response({"unexpected": "shape"})
    return web.json_response({"error": f"injected {fault}"}, status=int(fault))


class _Reset(Exception):
    """Raised to drop the connection without an answer."""


@web.middleware
async def _reset_middleware(request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except _Reset:
        if request.transport is not None:
            request.transport.abort()
        raise web.HTTPInternalServerError() from None


class Simulator:
    """Serve every simulated service on 127.0.0.1; use as a context manager or start()/stop().

    :param port: API port (0 = pick a free one).
    :param file_port: file host port (0 = pick a free one).
    :param api_keys: per-service API keys (default ``DEFAULT_API_KEY`` for all).
    :param task_duration: default seconds a created task runs before it finishes.
    :param url_ttl: seconds a signed file URL stays valid.
    :param ssl_context: serve both ports over HTTPS with this context (benchmarks; default plain HTTP).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        file_port: int = 0,
        api_keys: Mapping[str, str] | None = None,
        task_duration: float = 3.0,
        url_ttl: float = 3600.0,
        clock: Callable[[], float] = time.time,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self._ports = (port, file_port)
        self._ssl = ssl_context
        self.state = SimState(api_keys=api_keys or {}, url_ttl=url_ttl, clock=clock)
        self.services = _load_services(self.state, task_duration)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.file_port = 0

    # -- Python control -----------------------------------------------------------------------
    def __getattr__(self, name: str) -> ServiceSim:
        services = self.__dict__.get("services", {})
        if name in services:
            return services[name]  # type: ignore[no-any-return]
        raise AttributeError(name)

    @property
    def base_url(self) -> str:
        return self.state.api_base_url

    def url(self, service: str) -> str:
        """The API base URL to put in a connection's host for ``service``."""
        if service == "scenext":
            return f"{self.base_url}/scenext/api"
        sim = self.services.get(service)
        return f"{self.base_url}{sim.path if sim is not None else '/' + service}"

    def set_faults(self, service: str, faults: Faults | None) -> None:
        if faults is None:
            self.state.faults.pop(service, None)
        else:
            self.state.faults[service] = faults

    def hold_create_answers(self, service: str, seconds: float | None) -> None:
        """Create ``service``'s tasks at once but answer each create only ``seconds`` later, so a test can
        kill the caller while its create is in flight; None answers held and later creates at once."""
        if seconds is not None:
            self.state.create_answer_delay[service] = seconds
            return
        self.state.create_answer_delay.pop(service, None)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.state.release_create_answers, service)
        else:
            self.state.release_create_answers(service)

    def settle(self, limit: float = 30.0) -> None:
        """Wait (real time, at most ``limit`` s) until no request is being answered, e.g. a slow fault."""
        ends = time.monotonic() + limit
        while self.state.in_flight and time.monotonic() < ends:
            time.sleep(0.01)

    def requests(self, service: str | None = None) -> list[RequestRecord]:
        return [r for r in list(self.state.requests) if service is None or r.service == service]

    def reset(self) -> None:
        self.state.faults.clear()
        for service in list(self.state.create_answer_delay):
            self.hold_create_answers(service, None)
        self.state.requests.clear()
        self.state.counts.clear()
        for sim in self.services.values():
            sim.reset_all()

    # -- server -------------------------------------------------------------------------------
    def build_app(self) -> web.Application:
        from airflow_provider_avatar.testing import sim_files

        app = web.Application(
            middlewares=[_reset_middleware, _make_middleware(self.state, self.services)], client_max_size=32 * 2**20
        )
        for sim in self.services.values():
            app.add_routes(sim.routes())
        app.add_routes(sim_files.routes(self.state))
        app.add_routes(self._control_routes())
        return app

    async def start_async(self) -> None:
        self._runner = web.AppRunner(self.build_app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        api, files = (
            web.TCPSite(self._runner, self.host, port, backlog=4096, reuse_address=True, ssl_context=self._ssl)
            for port in self._ports
        )
        await api.start()
        await files.start()
        self.port = api._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.file_port = files._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        scheme = "https" if self._ssl else "http"
        self.state.api_base_url = f"{scheme}://{self.host}:{self.port}"
        self.state.file_base_url = f"{scheme}://{self.host}:{self.file_port}"

    async def stop_async(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def start(self) -> Simulator:
        """Start in a daemon thread; returns once both ports accept connections."""
        ready = threading.Event()
        errors: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self.start_async())
            except BaseException as exc:  # report start-up failures to the caller
                errors.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.stop_async())
            loop.close()

        self._thread = threading.Thread(target=serve, name="avatar-simulator", daemon=True)
        self._thread.start()
        ready.wait(30)
        if errors:
            raise errors[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop = self._thread = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- HTTP control (for a simulator running in another process) -----------------------------
    def _control_routes(self) -> list[web.RouteDef]:
        async def faults(request: web.Request) -> web.Response:
            body = await request.json()
            service = body.pop("service")
            self.set_faults(service, Faults(**body) if body else None)
            return web.json_response({"ok": True})

        async def requests_(request: web.Request) -> web.Response:
            service = request.query.get("service")
            rows = [
                {k: v for k, v in asdict(r).items() if k != "authorization"}
                | {"has_authorization": r.authorization is not None}
                for r in self.requests(service)
            ]
            return web.json_response(rows)

        async def reset(request: web.Request) -> web.Response:
            self.reset()
            return web.json_response({"ok": True})

        async def info(request: web.Request) -> web.Response:
            return web.json_response(self.info())

        return [
            web.post("/_sim/faults", faults),
            web.get("/_sim/requests", requests_),
            web.post("/_sim/reset", reset),
            web.get("/_sim/info", info),
        ]

    def info(self) -> dict[str, Any]:
        return {
            "api": self.base_url,
            "files": self.state.file_base_url,
            "services": {name: self.url(name) for name in self.services},
            "counts": dict(self.state.counts),
            "logins": {name: sim.login for name, sim in self.services.items() if sim.login is not None},
            # Extras a connection needs (TRTC: region, SdkAppId) and those that take the key (secrets).
            "extras": {name: sim.public_extra for name, sim in self.services.items() if sim.public_extra},
            "secret_extras": {
                name: list(sim.secret_extras) for name, sim in self.services.items() if sim.secret_extras
            },
            "summary": {name: sim.summary() for name, sim in self.services.items()},
        }

    def connection_env(self, *services: str, **extra: Any) -> dict[str, str]:
        """:func:`connection_env` for ``services`` (default: all) with this simulator's URLs, logins,
        keys and service extras; ``extra`` adds connection extras."""
        info = self.info()
        names = services or tuple(self.services)
        keys = {name: self.state.key_for(name) for name in names}
        return connection_env(
            {n: info["services"][n] for n in names},
            keys,
            info["logins"],
            extras=info["extras"],
            secret_extras=info["secret_extras"],
            **extra,
        )


def connection_env(
    services: Mapping[str, str],
    keys: Mapping[str, str] | str,
    logins: Mapping[str, str],
    *,
    extras: Mapping[str, Mapping[str, Any]] | None = None,
    secret_extras: Mapping[str, Sequence[str]] | None = None,
    **extra: Any,
) -> dict[str, str]:
    """``AIRFLOW_CONN_<SERVICE>_DEFAULT`` (Airflow's JSON form) for simulated services: base URL
    (``services``), login (ZEGO's AppId, TRTC's SecretId), key, downloads from loopback allowed, the
    service's ``extras`` (TRTC: region, SdkAppId), its ``secret_extras`` set to its key (TRTC's SDK
    secret key), plus ``extra``.

    Also usable from another process with the ready line's ``services``, ``logins``, ``extras`` and
    ``secret_extras``.
    """
    env = {}
    for name, url in services.items():
        key = keys if isinstance(keys, str) else keys[name]
        conn: dict[str, Any] = {"conn_type": name, "host": url}
        if logins.get(name) is not None:
            conn["login"] = logins[name]
        conn["password"] = key
        own = {**(extras or {}).get(name, {}), **dict.fromkeys((secret_extras or {}).get(name, ()), key)}
        conn["extra"] = {"allow_private_hosts": True, **own, **extra}
        env[f"AIRFLOW_CONN_{name.upper()}_DEFAULT"] = json.dumps(conn)
    return env


def main(argv: list[str] | None = None) -> None:
    """Serve until SIGINT/SIGTERM; print the ready line (JSON) and the connections' ``export`` lines first."""
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_avatar.testing.simulator",
        description=__doc__.splitlines()[0],
        epilog="Stdout: one JSON line (base URLs, ports, logins), then one `export AIRFLOW_CONN_<SERVICE>_DEFAULT=...` "
        'line per service, ready to paste into a shell or to load with: eval "$(grep ^export FILE)"',
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address both ports listen on (default: %(default)s)")
    add("--port", type=int, default=0, help="API port of every service; 0 picks a free one (default: %(default)s)")
    add(
        "--file-port",
        type=int,
        default=0,
        help="port of the file host videos are downloaded from; 0 picks a free one (default: %(default)s)",
    )
    add("--duration", type=float, default=3.0, help="seconds each created task runs (default: %(default)s)")
    add(
        "--api-key",
        default=DEFAULT_API_KEY,
        help="key every service accepts (ZEGO: ServerSecret; TRTC: SecretKey and SDK secret key) "
        "(default: %(default)s)",
    )
    add(
        "--log-requests",
        action="store_true",
        help="log each request to stderr: method, path, status, fault, latency (default: off)",
    )
    add("--no-log", action="store_true", help="keep no request log in memory, for benchmarks (default: keep one)")
    add("--tls-cert", help="serve HTTPS with this PEM certificate and --tls-key (default: plain HTTP)")
    add("--tls-key", help="the certificate's PEM private key (default: none)")
    args = parser.parse_args(argv)
    context = None
    if args.tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls_cert, args.tls_key)
    sim = Simulator(
        host=args.host,
        port=args.port,
        file_port=args.file_port,
        task_duration=args.duration,
        api_keys={name: args.api_key for name in ("scenext", "zego", "dreamface", "minimax", "trtc")},
        ssl_context=context,
    )
    sim.state.record = not args.no_log
    if args.log_requests:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        request_log.addHandler(handler)
        request_log.setLevel(logging.INFO)
        sim.state.log_requests = True

    async def run() -> None:
        await sim.start_async()
        exports = [f"export {name}={shlex.quote(value)}" for name, value in sim.connection_env().items()]
        # One write: whoever waits for the first line (scripts, tests) or for the exports sees all of it.
        print("\n".join([json.dumps({"ready": True, **sim.info()}), *exports]), flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await sim.stop_async()

    asyncio.run(run())


if __name__ == "__main__":
    main()
