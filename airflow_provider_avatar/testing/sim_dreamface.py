"""Simulated new-api gateway serving DreamFace avatar tasks (docs/services/dreamface.md) under ``/dreamface``.

Status reads answer new-api's envelope exactly like the documented example (string ``code``, the
DreamFace work nested in ``data.data``, progress strings, ``task_not_exist`` on HTTP 400, an
OpenAI-style 401). The submit route is not published anywhere, so the simulator serves one at a
configurable path (``submit_path``, offered to clients as the ``create_path`` connection extra) and
answers in one of the shapes gateways use (``answer_shape``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from airflow_provider_avatar.testing.simulator import ServiceSim

#: Outcomes a scripted task can end in.
OUTCOMES = ("success", "failure", "no_artifact", "watermarked_only", "unknown")
#: Create-answer shapes: ``{"code":"success","data":"<id>"}``, ``{"data":{"task_id"}}``, ``{"task_id"}``,
#: ``{"id"}``, and one no client can read (``odd``).
ANSWER_SHAPES = ("data", "data.task_id", "task_id", "id", "odd")
#: A task every simulator knows from its start, whose timeline begins at its first status read:
#: the example DAG that waits for a given id runs with it under ``make demo`` and in tests.
DEMO_TASK_ID = "demo-avatar-task"


@dataclass
class DreamFaceTask:
    task_id: str
    created_at: float | None
    duration: float
    outcome: str = "success"
    #: Explicit (raw status, seconds) phases before the generation itself (default: SUBMITTED, QUEUED).
    phases: list[tuple[str, float]] | None = None
    body: dict[str, Any] = field(default_factory=dict)
    polls: int = 0
    #: Seconds after creation from which the task is no longer found, or None.
    gone_after: float | None = None


class DreamFaceSim(ServiceSim):
    name = "dreamface"
    not_applicable = {"check-9": "a generation job ends by itself: there is nothing to stop"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tasks: dict[str, DreamFaceTask] = {}
        self._ids = itertools.count(1)
        self.submit_path = "avatar/submit"
        self.answer_shape = "data"
        self.next_outcome = "success"
        self.created_bodies: list[dict[str, Any]] = []
        self.refuse_creates = 0
        self.reset()

    def reset(self) -> None:
        self.tasks.clear()
        self.created_bodies.clear()
        self.submit_path = "avatar/submit"
        self.answer_shape = "data"
        self.next_outcome = "success"
        self.refuse_creates = 0
        self.tasks[DEMO_TASK_ID] = DreamFaceTask(DEMO_TASK_ID, created_at=None, duration=self.default_duration)

    @property
    def public_extra(self) -> dict[str, Any]:
        return {"create_path": self.submit_path}

    def summary(self) -> dict[str, Any]:
        unfinished = sum(1 for task in self.tasks.values() if self._raw(task)[0] not in ("SUCCESS", "FAILURE"))
        return {"tasks": len(self.tasks), "unfinished": unfinished}

    def add_task(
        self,
        *,
        duration: float | None = None,
        outcome: str = "success",
        task_id: str | None = None,
        phases: list[tuple[str, float]] | None = None,
        gone_after: float | None = None,
        body: dict[str, Any] | None = None,
    ) -> str:
        """Script a task directly (tests, benchmarks); returns its id."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}")
        task_id = task_id or f"df{next(self._ids):030x}"
        self.tasks[task_id] = DreamFaceTask(
            task_id=task_id,
            created_at=self.state.clock(),
            duration=self.default_duration if duration is None else duration,
            outcome=outcome,
            phases=phases,
            body=dict(body or {}),
            gone_after=gone_after,
        )
        return task_id

    # -- reliability-suite interface (ServiceSim.script) ---------------------------------------
    def _script(self, history: str, duration: float) -> str:
        if history == "unknown_then_succeeds":
            return self.add_task(duration=duration / 2, phases=[("UNKNOWN", duration / 2)])
        if history == "gone_after_seen":
            return self.add_task(duration=3600.0, gone_after=duration)
        if history == "long_running":
            return self.add_task(duration=10**7)
        outcome = {"succeeds": "success", "fails": "failure", "no_artifact": "no_artifact"}[history]
        return self.add_task(duration=duration, outcome=outcome)

    def create_call(self) -> tuple[str, dict[str, Any]]:
        return "create_avatar", {
            "body": {"image_url": "https://cdn.test/face.png", "audio_url": "https://cdn.test/a.mp3"}
        }

    def refuse_next_create(self) -> None:
        self.refuse_creates += 1

    # -- wire ----------------------------------------------------------------------------------
    def is_status_read(self, request: web.BaseRequest) -> bool:
        return request.method == "GET" and "/avatar/task/" in request.path

    def is_create(self, request: web.BaseRequest) -> bool:
        return request.method == "POST"

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/dreamface/avatar/task/{task_id}", self.get_task),
            web.post("/dreamface/{tail:.+}", self.submit),
        ]

    def _auth(self, request: web.Request) -> None:
        if request.headers.get("Authorization") != f"Bearer {self.state.key_for(self.name)}":
            raise web.HTTPUnauthorized(
                text='{"error":{"message":"无效的令牌 (invalid token)","type":"new_api_error","param":"","code":""}}',
                content_type="application/json",
            )

    async def submit(self, request: web.Request) -> web.Response:
        self._auth(request)
        if request.match_info["tail"].strip("/") != self.submit_path.strip("/"):
            message = f"Invalid URL (POST {request.path})"
            return web.json_response({"error": {"message": message, "type": "invalid_request_error"}}, status=404)
        try:
            body = await request.json()
        except ValueError:
            return web.json_response(
                {"code": "invalid_request", "message": "invalid JSON body", "data": None}, status=400
            )
        if not isinstance(body, dict) or not body:
            return web.json_response(
                {"code": "invalid_request", "message": "empty request body", "data": None}, status=400
            )
        if self.refuse_creates:
            self.refuse_creates -= 1
            return web.json_response(
                {"code": "invalid_request", "message": "image_url is not a reachable image", "data": None}, status=400
            )
        self.created_bodies.append(body)
        task_id = self.add_task(outcome=self.next_outcome, body=body)
        shapes: dict[str, Any] = {
            "data": {"code": "success", "message": "", "data": task_id},
            "data.task_id": {"code": "success", "message": "", "data": {"task_id": task_id, "status": "SUBMITTED"}},
            "task_id": {"task_id": task_id, "status": "SUBMITTED"},
            "id": {"id": task_id, "object": "avatar.task"},
            "odd": {"code": "success", "message": "", "result": {"job": task_id}},
        }
        return web.json_response(shapes[self.answer_shape])

    async def get_task(self, request: web.Request) -> web.Response:
        self._auth(request)
        task = self.tasks.get(request.match_info["task_id"])
        now = self.state.clock()
        if task is not None and task.created_at is None:
            task.created_at = now  # the demo task starts when someone first asks for it
        if (
            task is None
            or not self.listed(task.task_id)
            or (
                task.gone_after is not None and task.created_at is not None and now - task.created_at >= task.gone_after
            )
        ):
            return web.json_response({"code": "task_not_exist", "message": "task_not_exist", "data": None}, status=400)
        task.polls += 1
        return web.json_response({"code": "success", "message": "", "data": self.view(task)})

    def _raw(self, task: DreamFaceTask) -> tuple[str, str]:
        """(status, progress string) of a task now."""
        elapsed = 0.0 if task.created_at is None else self.state.clock() - task.created_at
        phases = task.phases if task.phases is not None else [("SUBMITTED", 0.1 * task.duration)]
        for raw, seconds in phases:
            if elapsed < seconds:
                return raw, "0%" if raw != "UNKNOWN" else ""
            elapsed -= seconds
        if elapsed < task.duration:
            return "IN_PROGRESS", f"{min(99, int(100 * elapsed / task.duration)) if task.duration else 0}%"
        return {"failure": "FAILURE", "unknown": "UNKNOWN"}.get(task.outcome, "SUCCESS"), (
            "100%" if task.outcome != "unknown" else ""
        )

    def view(self, task: DreamFaceTask) -> dict[str, Any]:
        """The task object new-api returns, DreamFace's work record nested in ``data``."""
        raw, progress = self._raw(task)
        created = task.created_at or 0.0
        done = raw in ("SUCCESS", "FAILURE")
        data: dict[str, Any] = {
            "task_id": task.task_id,
            "notify_hook": "",
            "action": "avatar-generate",
            "status": raw,
            "fail_reason": "face not detected in the image" if raw == "FAILURE" else "",
            "submit_time": int(created),
            "start_time": 0,
            "finish_time": int(created + task.duration) if done else 0,
            "progress": progress,
            "data": None,
        }
        if raw == "SUCCESS":
            video = self.state.file_url(f"{task.task_id}.mp4")
            work: dict[str, Any] = {
                "animate_id": task.task_id,
                "create_time": int(created * 1000),
                "file_type": "VIDEO",
                "id": f"work-{task.task_id}",
                "web_work_status": 200,
                "work_name": "talking-avatar.mp3",
                "work_webp_path": self.state.file_url(f"{task.task_id}.png"),
            }
            if task.outcome == "success":
                work.update(no_wm_work_video_path=video, work_video_path=video, wm_work_video_path=video)
            elif task.outcome == "watermarked_only":
                work["wm_work_video_path"] = video
            data["data"] = work
        return data
