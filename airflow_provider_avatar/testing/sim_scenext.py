"""Simulated Scenext API (docs/services/scenext.md) under ``/scenext/api``."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from airflow_provider_avatar.testing.simulator import ServiceSim

#: Outcomes a scripted task can end in.
OUTCOMES = ("completed", "completed_list", "no_artifact", "failed", "unknown")


@dataclass
class ScenextTask:
    task_id: str
    created_at: float
    duration: float
    outcome: str = "completed"
    frames: int = 5
    #: Optional explicit timeline: (raw status, seconds) phases before the final outcome.
    phases: list[tuple[str, float]] = field(default_factory=list)
    polls: int = 0
    #: Seconds after creation from which the task is no longer found (a deleted task), or None.
    gone_after: float | None = None


class ScenextSim(ServiceSim):
    name = "scenext"
    not_applicable = {"check-9": "a generation job ends by itself: there is nothing to stop"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tasks: dict[str, ScenextTask] = {}
        self._ids = itertools.count(10001)
        self.next_outcome = "completed"
        self.created_bodies: list[dict[str, Any]] = []
        self.refuse_creates = 0

    def reset(self) -> None:
        self.tasks.clear()
        self.created_bodies.clear()
        self.next_outcome = "completed"
        self.refuse_creates = 0

    def add_task(
        self,
        *,
        duration: float | None = None,
        outcome: str = "completed",
        task_id: str | None = None,
        phases: list[tuple[str, float]] | None = None,
        created_at: float | None = None,
        gone_after: float | None = None,
    ) -> str:
        """Script a task directly (tests, benchmarks); returns its id."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}")
        task_id = task_id or str(next(self._ids))
        self.tasks[task_id] = ScenextTask(
            task_id=task_id,
            created_at=self.state.clock() if created_at is None else created_at,
            duration=self.default_duration if duration is None else duration,
            outcome=outcome,
            phases=list(phases or []),
            gone_after=gone_after,
        )
        return task_id

    # -- reliability-suite interface (ServiceSim.script) ---------------------------------------
    def _script(self, history: str, duration: float) -> str:
        if history == "unknown_then_succeeds":
            return self.add_task(duration=duration / 2, phases=[("REVIEWING", duration / 2)])
        if history == "gone_after_seen":
            return self.add_task(duration=3600.0, gone_after=duration)
        if history == "long_running":
            return self.add_task(duration=10**7)
        outcome = {"succeeds": "completed", "fails": "failed", "no_artifact": "no_artifact"}[history]
        return self.add_task(duration=duration, outcome=outcome)

    def create_call(self) -> tuple[str, dict[str, Any]]:
        return "create_video", {"question": "Why is the sky blue?"}

    def refuse_next_create(self) -> None:
        self.refuse_creates += 1

    # -- wire ----------------------------------------------------------------------------------
    def is_status_read(self, request: web.BaseRequest) -> bool:
        return request.method == "GET" and "/get_status/" in request.path

    def is_create(self, request: web.BaseRequest) -> bool:
        return request.method == "POST" and request.path.endswith("/gen_video")

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/scenext/api/gen_video", self.gen_video),
            web.get("/scenext/api/get_status/{task_id}", self.get_status),
            # Benchmark support (not part of Scenext's API), see benchmarks/README.md.
            web.get("/scenext/api/_bench/done/{task_id}", self.bench_done),
            web.post("/_sim/scenext/tasks", self.bench_add_tasks),
            web.get("/_sim/scenext/tasks", self.bench_polls),
        ]

    def _auth(self, request: web.Request) -> None:
        if request.headers.get("Authorization") != f"Bearer {self.state.key_for(self.name)}":
            raise web.HTTPUnauthorized(
                text='{"status":"error","data":{"messages":"Unauthorized: Invalid API key"}}',
                content_type="application/json",
            )

    @staticmethod
    def _error(message: str, status: int = 400) -> web.Response:
        return web.json_response({"status": "error", "data": {"messages": message}}, status=status)

    async def gen_video(self, request: web.Request) -> web.Response:
        self._auth(request)
        try:
            body = await request.json()
        except ValueError:
            return self._error("invalid JSON body")
        if not isinstance(body, dict) or not (body.get("question") or body.get("questionImages")):
            return self._error("question or questionImages is required")
        if body.get("quality", "m") not in ("l", "m", "h"):
            return self._error("quality must be l, m or h")
        if self.refuse_creates:
            self.refuse_creates -= 1
            return self._error("questionImages[0] is not a reachable image")
        self.created_bodies.append(body)
        task_id = self.add_task(outcome=self.next_outcome)
        return web.json_response({"status": "success", "data": {"task_id": task_id}})

    def _polled_task(self, request: web.Request) -> ScenextTask | None:
        """The task a status read names (counted as one more poll), or None if unknown."""
        self._auth(request)
        task = self.tasks.get(request.match_info["task_id"])
        if (
            task is None
            or not self.listed(task.task_id)
            or (task.gone_after is not None and self.state.clock() - task.created_at >= task.gone_after)
        ):
            return None
        task.polls += 1
        return task

    async def get_status(self, request: web.Request) -> web.Response:
        task = self._polled_task(request)
        if task is None:
            return self._error("task not found", status=404)
        return web.json_response({"status": "success", "data": self.view(task)})

    def view(self, task: ScenextTask) -> dict[str, Any]:
        elapsed = self.state.clock() - task.created_at
        for raw, seconds in task.phases:
            if elapsed < seconds:
                return {"task_id": task.task_id, "status": raw, "progress": []}
            elapsed -= seconds
        frame_count = min(task.frames, int(task.frames * elapsed / task.duration) + 1) if task.duration else 0
        progress = [
            {"id": f"frame{i}", "image": self.state.file_url(f"frame{i}.png")} for i in range(1, frame_count + 1)
        ]
        data: dict[str, Any] = {"task_id": task.task_id, "progress": progress}
        if elapsed < task.duration:
            data["status"] = "IN_PROGRESS"
            return data
        video = self.state.file_url(f"{task.task_id}.mp4")
        if task.outcome == "completed":
            data.update(status="COMPLETED", result={"video_url": video}, points=10)
        elif task.outcome == "completed_list":
            data.update(status="COMPLETED", result=[{"video_url": video}], points=10)
        elif task.outcome == "no_artifact":
            data.update(status="COMPLETED", result={})
        elif task.outcome == "failed":
            data.update(status="FAILED", result={"error": "rendering failed"})
        else:
            data.update(status="REVIEWING")
        return data

    # -- benchmark support ---------------------------------------------------------------------
    async def bench_done(self, request: web.Request) -> web.Response:
        """404 while the task runs, 200 once it has finished: what ``HttpSensorTrigger`` waits for."""
        task = self._polled_task(request)
        if task is None:
            return self._error("task not found", status=404)
        if self.state.clock() - task.created_at < task.duration + sum(seconds for _, seconds in task.phases):
            return self._error("not done yet", status=404)
        return web.json_response({"status": "success", "data": {"task_id": task.task_id}})

    async def bench_add_tasks(self, request: web.Request) -> web.Response:
        """Script many tasks at once from another process: ``{"tasks": [add_task kwargs, ...]}``."""
        body = await request.json()
        ids = [self.add_task(**spec) for spec in body["tasks"]]
        return web.json_response({"task_ids": ids})

    async def bench_polls(self, request: web.Request) -> web.Response:
        """Requests each task has answered (status reads and ``_bench/done`` checks)."""
        return web.json_response({task_id: task.polls for task_id, task in self.tasks.items()})
