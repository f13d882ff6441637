"""Simulated MiniMax Hailuo video API (docs/services/minimax.md) under ``/minimax``, in both flavors.

Direct: ``/minimax/v1/video_generation``, ``/minimax/v1/query/video_generation?task_id=``,
``/minimax/v1/files/retrieve?file_id=``. Gateway: ``/minimax/task/minimax/v1/video_generation``,
``/minimax/task/{task_id}``, ``/minimax/task/minimax/v1/files/retrieve?file_id=``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from airflow_provider_avatar.testing.simulator import ServiceSim

#: Outcomes a scripted task can end in: a file, a content refusal (1027, status Fail), a failure,
#: ``Success`` without a file id, or a status the client does not know.
OUTCOMES = ("success", "refused", "failed", "no_artifact", "unknown")
#: The timeline's share of each phase before the outcome.
PHASES = (("Preparing", 0.1), ("Queueing", 0.2), ("Processing", 0.7))


@dataclass
class MiniMaxTask:
    task_id: str
    created_at: float
    duration: float
    outcome: str = "success"
    file_id: str = ""
    polls: int = 0
    body: dict[str, Any] = field(default_factory=dict)
    #: Seconds after creation during which the task answers a status the client does not know.
    unknown_for: float = 0.0
    #: Seconds after creation from which the task is no longer found, or None.
    gone_after: float | None = None


class MiniMaxSim(ServiceSim):
    name = "minimax"
    not_applicable = {"check-9": "a generation job ends by itself: there is nothing to stop"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tasks: dict[str, MiniMaxTask] = {}
        self._ids = itertools.count(106916112212032)
        self.reset()

    def reset(self) -> None:
        self.tasks.clear()
        self.created_bodies: list[dict[str, Any]] = []
        self.create_times: list[float] = []
        self.next_outcome = "success"
        #: Creates allowed per minute of simulated time (``None``: no limit); over it, code 1002.
        self.rpm_limit: int | None = None
        #: A ``base_resp`` code the next creates answer with (1008 balance, 1026 sensitive input...).
        self.refuse_creates_with: int | None = None
        #: Gateway queries answer in the wrapper shape (``code``/``data.status``/``data.video_url``).
        self.wrapper = False
        #: The next N files/retrieve answers hand out an already expired download URL.
        self.expired_urls = 0
        self.retrieves = 0

    def summary(self) -> dict[str, Any]:
        return {"tasks": len(self.tasks), "retrieves": self.retrieves}

    def add_task(
        self,
        *,
        outcome: str = "success",
        duration: float | None = None,
        unknown_for: float = 0.0,
        gone_after: float | None = None,
    ) -> str:
        """Script a task directly (tests); returns its id."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}")
        task_id = str(next(self._ids))
        self.tasks[task_id] = MiniMaxTask(
            task_id=task_id,
            created_at=self.state.clock(),
            duration=self.default_duration if duration is None else duration,
            outcome=outcome,
            file_id=f"file-{task_id}",
            unknown_for=unknown_for,
            gone_after=gone_after,
        )
        return task_id

    # -- reliability-suite interface (ServiceSim.script) ---------------------------------------
    def _script(self, history: str, duration: float) -> str:
        if history == "unknown_then_succeeds":
            return self.add_task(duration=duration, unknown_for=duration / 2)
        if history == "gone_after_seen":
            return self.add_task(duration=3600.0, gone_after=duration)
        if history == "long_running":
            return self.add_task(duration=10**7)
        outcome = {"succeeds": "success", "fails": "failed", "no_artifact": "no_artifact"}[history]
        return self.add_task(duration=duration, outcome=outcome)

    def create_call(self) -> tuple[str, dict[str, Any]]:
        return "create_video", {"prompt": "A cat plays the piano."}

    def refuse_next_create(self) -> None:
        self.refuse_creates_with = 2013  # invalid params (cleared by reset)

    # -- wire ----------------------------------------------------------------------------------
    def is_status_read(self, request: web.BaseRequest) -> bool:
        return request.method == "GET" and ("/query/" in request.path or "/files/" not in request.path)

    def is_create(self, request: web.BaseRequest) -> bool:
        return request.method == "POST" and request.path.endswith("/video_generation")

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/minimax/v1/video_generation", self.create),
            web.get("/minimax/v1/query/video_generation", self.query_direct),
            web.get("/minimax/v1/files/retrieve", self.retrieve),
            web.post("/minimax/task/minimax/v1/video_generation", self.create),
            web.get("/minimax/task/minimax/v1/files/retrieve", self.retrieve),
            web.get("/minimax/task/{task_id}", self.query_gateway),
        ]

    @staticmethod
    def _resp(code: int = 0, message: str = "success", **body: Any) -> web.Response:
        return web.json_response({**body, "base_resp": {"status_code": code, "status_msg": message}})

    def _auth(self, request: web.Request) -> None:
        if request.headers.get("Authorization") != f"Bearer {self.state.key_for(self.name)}":
            raise web.HTTPUnauthorized(
                text='{"base_resp":{"status_code":1004,"status_msg":"login fail: Please carry the API secret key"}}',
                content_type="application/json",
            )

    async def create(self, request: web.Request) -> web.Response:
        self._auth(request)
        try:
            body = await request.json()
        except ValueError:
            return self._resp(2013, "invalid params, body is not JSON")
        if not isinstance(body, dict) or not body.get("model"):
            return self._resp(2013, "invalid params, model is required")
        prompt = str(body.get("prompt") or "")
        if len(prompt) > 2000:
            return self._resp(2013, "invalid params, prompt too long")
        if self.refuse_creates_with is not None:
            return self._resp(self.refuse_creates_with, "request refused")
        now = self.state.clock()
        if self.rpm_limit is not None and sum(1 for t in self.create_times if now - t < 60) >= self.rpm_limit:
            return self._resp(1002, "rate limit exceeded(RPM)")
        if "sensitive" in prompt.lower():
            return self._resp(1026, "input new_sensitive")
        self.create_times.append(now)
        self.created_bodies.append(body)
        task_id = self.add_task(outcome=self.next_outcome)
        self.tasks[task_id].body = body
        return self._resp(task_id=task_id)

    def _task(self, request: web.Request, task_id: str) -> MiniMaxTask | None:
        self._auth(request)
        task = self.tasks.get(task_id)
        if task is None or not self.listed(task_id):
            return None
        if task.gone_after is not None and self.state.clock() - task.created_at >= task.gone_after:
            return None
        task.polls += 1
        return task

    def view(self, task: MiniMaxTask) -> tuple[dict[str, Any], int, str]:
        """(query fields, base_resp code, message) of a task now."""
        elapsed = self.state.clock() - task.created_at
        if elapsed < task.unknown_for:
            return {"task_id": task.task_id, "status": "Reviewing", "file_id": ""}, 0, "success"
        start = 0.0
        for raw, share in PHASES:
            start += share * task.duration
            if elapsed < start:
                return {"task_id": task.task_id, "status": raw, "file_id": ""}, 0, "success"
        data: dict[str, Any] = {"task_id": task.task_id, "file_id": ""}
        if task.outcome == "success":
            data.update(status="Success", file_id=task.file_id, video_width=1366, video_height=768)
        elif task.outcome == "refused":
            data.update(status="Fail")
            return data, 1027, "output new_sensitive"
        elif task.outcome == "failed":
            data.update(status="Fail")
            return data, 1000, "unknown error"
        elif task.outcome == "no_artifact":
            data.update(status="Success")
        else:
            data.update(status="Reviewing")
        return data, 0, "success"

    async def query_direct(self, request: web.Request) -> web.Response:
        task = self._task(request, request.query.get("task_id", ""))
        if task is None:
            return self._resp(2013, "invalid params, task_id not found")
        data, code, message = self.view(task)
        return self._resp(code, message, **data)

    async def query_gateway(self, request: web.Request) -> web.Response:
        task = self._task(request, request.match_info["task_id"])
        if task is None:
            return web.json_response({"code": 404, "message": "task not found"}, status=404)
        data, code, message = self.view(task)
        if not self.wrapper:
            return self._resp(code, message, **data)
        if data.get("file_id"):
            data["video_url"] = self.state.file_url(f"{task.task_id}.mp4")
        wrapped = {**data, "base_resp": {"status_code": code, "status_msg": message}}
        return web.json_response({"code": 10000, "message": "Success", "data": wrapped, "request_id": "req-sim"})

    async def retrieve(self, request: web.Request) -> web.Response:
        self._auth(request)
        file_id = request.query.get("file_id", "")
        task = next((t for t in self.tasks.values() if t.file_id == file_id and t.outcome == "success"), None)
        if task is None:
            return self._resp(2013, "invalid params, file not found")
        self.retrieves += 1
        ttl: float | None = None
        if self.expired_urls > 0:
            self.expired_urls -= 1
            ttl = -10.0
        file = {
            "file_id": file_id,
            "bytes": 0,
            "created_at": int(task.created_at),
            "filename": f"{task.task_id}.mp4",
            "purpose": "video_generation",
            "download_url": self.state.file_url(f"{task.task_id}.mp4", ttl=ttl),
        }
        return self._resp(file=file)
