"""``AvatarVideoDownloadOperator``: fetch a finished video to a local path or object storage."""

from __future__ import annotations

import ast
import os
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator

from airflow_provider_avatar.exceptions import AvatarInputError
from airflow_provider_avatar.inputs import checking, flag, number, text, whole

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_avatar.hooks.base import AvatarBaseHook
    from airflow_provider_avatar.status import TaskStatus


class AvatarVideoDownloadOperator(BaseOperator):
    """Download a finished video, atomically: nothing appears at ``destination`` until verified.

    :param source: a sensor's ``TaskStatus`` dict (e.g. ``sensor.output``) or a video URL
        (templated). For a status dict, a fresh signed URL is fetched from the service first.
    :param destination: where the video is written (templated): an absolute local file path
        (``/data/videos/{{ run_id }}.mp4``) or an object-storage URI (``s3://bucket/key.mp4``,
        ``s3://aws_conn@bucket/key.mp4``, ``file:///data/video.mp4``). Checked before the service
        is asked for a URL: a relative path, an unknown scheme, an http(s) URL or a scheme whose
        filesystem package is missing (``s3://`` needs ``apache-airflow-providers-amazon[s3fs]``)
        is refused; so is a directory (trailing slash or an existing one), also with ``overwrite``:
        give the file name, e.g. ``<dir>/video.mp4``.
    :param service: service key; read from the status dict when omitted. Needed with a bare URL
        only to apply that service connection's ``allow_private_hosts``.
    :param conn_id: the service's connection id (templated); defaults to ``<service>_default``.
    :param overwrite: replace an existing file instead of failing (never a directory).
    :param chunk_size: bytes per write; memory use stays flat whatever the file size.

    Returns ``{"path", "bytes", "sha256", "content_type", "source_url", "service",
    "remote_task_id"}``; ``source_url`` is shown without its query string.
    """

    template_fields: Sequence[str] = ("source", "destination", "conn_id")
    template_fields_renderers = {"source": "json"}

    def __init__(
        self,
        *,
        source: Mapping[str, Any] | str,
        destination: str | os.PathLike[str],
        service: str | None = None,
        conn_id: str | None = None,
        overwrite: bool = False,
        chunk_size: int = 1024 * 1024,
        read_timeout: float = 300.0,
        **kwargs: Any,
    ) -> None:
        from airflow_provider_avatar.services import SERVICES, service_info

        # Not templated: checked when the DAG is parsed.
        with checking(service if service is not None and service in SERVICES else "download", "download"):
            if service is not None and service not in SERVICES:
                service_info(str(service))  # raises, naming the known services
            flag("overwrite", overwrite)
            whole("chunk_size", chunk_size, positive=True)
            number("read_timeout", read_timeout, positive=True)
        super().__init__(**kwargs)
        self.source = source
        self.destination = destination
        self.service = service
        self.conn_id = conn_id
        self.overwrite = overwrite
        self.chunk_size = chunk_size
        self.read_timeout = read_timeout

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_avatar.download import download_file

        status = self._source_status()
        url = None if status is not None else self._source_url()
        if status is not None and self.service is not None and self.service != status.service:
            raise self._bad_input(
                f"service {self.service!r} does not match the source's service {status.service!r}: "
                "leave service unset for a status dict"
            )
        destination = os.fspath(self.destination) if isinstance(self.destination, os.PathLike) else self.destination
        with checking(self.service or "download", "download"):
            destination = text("destination", destination)
        service = self.service or (status.service if status else None)
        hook = self._hook(service)
        allow_private = hook.config.allow_private_hosts if hook else False
        remote_task_id = status.remote_task_id if status else None
        source: str | Callable[[], str]
        refresh: Callable[[], str] | None = None
        if status is not None and hook is not None:
            source = refresh = partial(hook.fresh_video_url, status.remote_task_id)
        else:
            source = str(url)
        try:
            result = download_file(
                source,
                destination,
                allow_private_hosts=allow_private,
                overwrite=self.overwrite,
                refresh_url=refresh,
                timeout=(10.0, self.read_timeout),
                chunk_size=self.chunk_size,
                service=service or "download",
                remote_task_id=remote_task_id,
            )
        finally:
            if hook is not None:
                hook.close()
        self.log.info("Downloaded %d bytes to %s (sha256 %s)", result.bytes, result.path, result.sha256)
        return {**result.to_dict(), "service": service, "remote_task_id": remote_task_id}

    def _source_status(self) -> TaskStatus | None:
        from airflow_provider_avatar.status import TaskStatus

        source: Any = self.source
        if isinstance(source, str) and source.lstrip().startswith("{"):
            # A templated XCom pull renders a dict as its repr unless the DAG renders native objects.
            try:
                source = ast.literal_eval(source)
            except (ValueError, SyntaxError):
                raise self._bad_input("source looks like a TaskStatus dict but cannot be parsed") from None
        if isinstance(source, Mapping):
            try:
                return TaskStatus.from_dict(source)
            except ValueError as exc:
                raise self._bad_input(f"source is {exc}") from None
        return None

    def _source_url(self) -> str:
        """A bare ``source``: an http(s) URL with a host (the download checks where it points)."""
        from urllib.parse import urlsplit

        url = self.source.strip() if isinstance(self.source, str) else ""
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            shown = url.split("?", 1)[0][:80] if url else self.source
            raise self._bad_input(
                f"source must be a TaskStatus dict (a sensor's output) or an http(s) video URL with a host; "
                f"got {shown!r}"
            )
        return url

    def _hook(self, service: str | None) -> AvatarBaseHook | None:
        if service is None:
            return None
        from airflow_provider_avatar.services import make_hook

        return make_hook(service, self.conn_id)

    def _bad_input(self, message: str) -> AvatarInputError:
        return AvatarInputError(message, service=self.service or "download", action="download")
