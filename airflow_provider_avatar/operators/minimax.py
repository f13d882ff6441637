"""MiniMax Hailuo video operators."""

from __future__ import annotations

import base64
import mimetypes
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow.providers.common.compat.sdk import BaseOperator

from airflow_provider_avatar.services import MINIMAX_CONN_ID

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

#: Image types MiniMax accepts for a first frame.
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")


def first_frame_data(value: str) -> str:
    """``first_frame_image`` as MiniMax takes it: an http(s) URL or data URI as given; a local absolute
    path or an object storage URI (``s3://...``, ``file://...``) read and sent as a data URI, its size
    checked before it is read."""
    from airflow_provider_avatar.exceptions import AvatarInputError
    from airflow_provider_avatar.protocols.minimax import CREATE, MAX_IMAGE_BYTES, SERVICE

    def bad(message: str) -> AvatarInputError:
        return AvatarInputError(message, service=SERVICE, action=CREATE)

    value = value.strip()
    scheme = urlsplit(value).scheme.lower()
    if scheme in ("http", "https", "data"):
        return value
    kind = mimetypes.guess_type(value.split("?", 1)[0])[0]
    if kind not in IMAGE_TYPES:
        raise bad(f"first_frame_image {value!r} must be a .jpg, .png or .webp image (or a URL or data URI)")
    if scheme:
        from airflow.sdk import ObjectStoragePath

        try:
            path = ObjectStoragePath(value)
            size = path.stat().st_size
            if size > MAX_IMAGE_BYTES:
                raise bad(f"first_frame_image is {size} bytes; MiniMax accepts at most {MAX_IMAGE_BYTES}")
            data = path.read_bytes()
        except (OSError, ValueError) as exc:
            if isinstance(exc, AvatarInputError):
                raise
            raise bad(f"first_frame_image {value!r} cannot be read ({type(exc).__name__})") from None
    else:
        if not os.path.isabs(value):
            raise bad("first_frame_image must be a URL, a data URI, an absolute local path or an object storage URI")
        try:
            size = os.stat(value).st_size
            if size > MAX_IMAGE_BYTES:
                raise bad(f"first_frame_image is {size} bytes; MiniMax accepts at most {MAX_IMAGE_BYTES}")
            with open(value, "rb") as handle:
                data = handle.read(MAX_IMAGE_BYTES + 1)
        except OSError as exc:
            raise bad(f"first_frame_image {value!r} cannot be read ({type(exc).__name__})") from None
    if len(data) > MAX_IMAGE_BYTES:
        raise bad(f"first_frame_image is over {MAX_IMAGE_BYTES} bytes; MiniMax accepts at most that")
    return f"data:{kind};base64,{base64.b64encode(data).decode('ascii')}"


class MiniMaxCreateVideoOperator(BaseOperator):
    """Submit a MiniMax Hailuo video task (text-to-video, or image-to-video with a first frame) and
    return its remote task id (XCom).

    Input is checked before anything is sent: the prompt (at most 2000 characters), ``duration``
    (6 or 10), and the documented model/resolution/duration combinations of the known models
    (an unknown model is passed through with a warning). MiniMax limits creates per minute: the
    connection paces them (``action_max_qps``, default 5 per minute) and a create MiniMax refused
    for its minute budget (1002) is retried with backoff; a create whose answer was lost is never
    re-sent, so it cannot bill a second video (nor by a later try of this task instance: see
    ``airflow_provider_avatar.submit_guard``).

    :param prompt: the video description, camera directives in ``[...]`` (templated).
    :param model: e.g. ``MiniMax-Hailuo-2.3`` (default), ``MiniMax-Hailuo-02``, ``T2V-01`` (templated).
    :param duration: 6 or 10 seconds (MiniMax's default when unset: 6) (templated).
    :param resolution: e.g. ``768P``, ``1080P``, ``720P``, ``512P`` depending on the model (templated).
    :param first_frame_image: an http(s) URL, a data URI, an absolute local path or an object storage
        URI of a JPEG/PNG/WebP image (read and sent as a data URI; at most 20 MB) (templated).
    :param prompt_optimizer: let MiniMax rewrite the prompt (MiniMax's default: true).
    :param fast_pretreatment: shorten the prompt optimisation (Hailuo 2.3/02 only).
    :param callback_url: optional http(s) URL MiniMax posts status changes to (not used to decide
        the state: the sensor polls).
    :param extra_body: further create fields passed through as they are (templated).
    :param minimax_conn_id: Airflow connection id (type ``minimax``, templated).
    """

    template_fields: Sequence[str] = (
        "prompt",
        "model",
        "duration",
        "resolution",
        "first_frame_image",
        "callback_url",
        "extra_body",
        "minimax_conn_id",
    )
    template_fields_renderers = {"extra_body": "json"}

    def __init__(
        self,
        *,
        prompt: str | None = None,
        model: str = "MiniMax-Hailuo-2.3",
        duration: int | str | None = None,
        resolution: str | None = None,
        first_frame_image: str | None = None,
        prompt_optimizer: bool | None = None,
        fast_pretreatment: bool | None = None,
        callback_url: str | None = None,
        extra_body: dict[str, Any] | None = None,
        minimax_conn_id: str = MINIMAX_CONN_ID,
        **kwargs: Any,
    ) -> None:
        from airflow_provider_avatar.protocols.minimax import create_switches

        create_switches(prompt_optimizer, fast_pretreatment)  # not templated: checked when the DAG is parsed
        super().__init__(**kwargs)
        self.prompt = prompt
        self.model = model
        self.duration = duration
        self.resolution = resolution
        self.first_frame_image = first_frame_image
        self.prompt_optimizer = prompt_optimizer
        self.fast_pretreatment = fast_pretreatment
        self.callback_url = callback_url
        self.extra_body = extra_body
        self.minimax_conn_id = minimax_conn_id

    def execute(self, context: Context) -> str:
        from airflow_provider_avatar.hooks.minimax import MiniMaxVideoHook
        from airflow_provider_avatar.protocols.minimax import CREATE
        from airflow_provider_avatar.submit_guard import guarded_create

        image = self.first_frame_image
        if isinstance(image, os.PathLike):
            image = os.fspath(image)
        if isinstance(image, str) and image.strip():
            image = first_frame_data(image)  # else the create refuses it, naming first_frame_image
        hook = MiniMaxVideoHook(self.minimax_conn_id)
        try:
            return guarded_create(
                context,
                hook,
                CREATE,
                lambda: hook.create_video(
                    prompt=self.prompt,
                    model=self.model,
                    duration=self.duration,
                    resolution=self.resolution,
                    first_frame_image=image,
                    prompt_optimizer=self.prompt_optimizer,
                    fast_pretreatment=self.fast_pretreatment,
                    callback_url=self.callback_url,
                    extra=self.extra_body,
                ),
                describe=lambda remote_task_id: f"Created MiniMax video task {remote_task_id}",
                logger=self.log,
            )
        finally:
            hook.close()
