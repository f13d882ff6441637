"""Edges a review found: object stores that cannot seek, a proxy's 404 page, a connection read that
fails while many waits poll, service messages quoting signed URLs, mounts without hard links."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

import pytest
from fsspec.spec import AbstractBufferedFile, AbstractFileSystem

from airflow_provider_avatar.download import download_file
from airflow_provider_avatar.exceptions import (
    AvatarDownloadError,
    AvatarNotFoundError,
    AvatarTaskFailedError,
    AvatarTransientError,
)
from airflow_provider_avatar.protocols.base import ApiResponse
from airflow_provider_avatar.services import hook_class
from airflow_provider_avatar.status import TaskState, TaskStatus
from airflow_provider_avatar.testing.clock import FakeClock
from airflow_provider_avatar.testing.simulator import Simulator, sample_video
from tests.helpers import collect_events, make_trigger


# -- an object store whose write handles cannot seek (s3fs, gcsfs, adlfs) -----------------------------
class _Store(dict[str, bytes]):
    pass


STORE = _Store()


class _UploadFile(AbstractBufferedFile):  # type: ignore[misc]
    """Writes in parts, like a multipart upload: no seek in write mode."""

    def _initiate_upload(self) -> None:
        self._parts: list[bytes] = []

    def _upload_chunk(self, final: bool = False) -> bool:
        self._parts.append(self.buffer.getvalue())
        if final:
            STORE[self.path] = b"".join(self._parts)
        return True

    def _fetch_range(self, start: int, end: int) -> bytes:
        return STORE[self.path][start:end]


class _UploadFS(AbstractFileSystem):  # type: ignore[misc]
    protocol = "uploadfs"
    root_marker = "/"

    def _open(self, path: str, mode: str = "rb", block_size: int | None = None, **kwargs: Any) -> _UploadFile:
        return _UploadFile(self, path, mode, block_size or 5 * 2**20, **kwargs)

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        path = self._strip_protocol(path)
        if path in STORE:
            return {"name": path, "size": len(STORE[path]), "type": "file"}
        if any(key.startswith(path.rstrip("/") + "/") for key in STORE):
            return {"name": path, "size": 0, "type": "directory"}
        raise FileNotFoundError(path)

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        keys = [key for key in STORE if key.startswith(self._strip_protocol(path))]
        return [self.info(key) for key in keys] if detail else keys

    def mv(self, path1: str, path2: str, **kwargs: Any) -> None:
        STORE[self._strip_protocol(path2)] = STORE.pop(self._strip_protocol(path1))

    def rm_file(self, path: str) -> None:
        STORE.pop(self._strip_protocol(path), None)

    def _rm(self, path: str) -> None:
        self.rm_file(path)


@pytest.fixture
def upload_store(request: pytest.FixtureRequest) -> _UploadFS:
    import fsspec
    from airflow.sdk.io.store import _STORE_CACHE, attach

    fsspec.register_implementation("uploadfs", _UploadFS, clobber=True)
    fs = _UploadFS()
    _STORE_CACHE.pop("uploadfs", None)
    attach("uploadfs", fs=fs)
    request.addfinalizer(lambda: (_STORE_CACHE.pop("uploadfs", None), STORE.clear()))
    return fs


@pytest.mark.filterwarnings("ignore:UPath 'uploadfs'")
def test_a_store_that_cannot_seek_is_written(sim: Simulator, upload_store: _UploadFS) -> None:
    """The first answer needs no rewind: a write handle without seek (s3fs's) must work."""
    download_file(sim.state.file_url("1.mp4"), "uploadfs://bucket/v.mp4", allow_private_hosts=True)
    (key,) = STORE  # the temporary part was renamed away
    assert key.endswith("bucket/v.mp4") and STORE[key] == sample_video()


# -- a 404 that is not the service's ------------------------------------------------------------------
PROXY_404 = ApiResponse(404, {"content-type": "text/html"}, b"<html><body>404 Not Found</body></html>")


@pytest.mark.parametrize("service", ["scenext", "zego", "minimax", "dreamface"])
def test_a_proxy_404_page_is_transient_not_gone(service: str) -> None:
    """During a deploy a load balancer answers 404 pages: a wait that saw the task must not end."""
    protocol = hook_class(service).protocol
    spec = protocol.build_status_request("task-1")
    with pytest.raises(AvatarTransientError):
        protocol.check(spec, PROXY_404)


# -- the shared hook re-reads its connection while waits poll ------------------------------------------
async def test_a_failed_connection_refresh_does_not_end_the_waits(
    scenext_conn: Simulator, fake_clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    import airflow.providers.common.compat.connection as compat

    from airflow_provider_avatar.triggers import poller

    real = compat.get_async_connection
    calls = 0

    async def flaky(conn_id: str, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:  # the refresh after HOOK_TTL: the API server hiccups once
            raise RuntimeError("API server unavailable")
        return await real(conn_id, **kwargs)

    monkeypatch.setattr(compat, "get_async_connection", flaky)
    monkeypatch.setattr(poller, "HOOK_TTL", 1.0)
    task_id = scenext_conn.scenext.add_task(duration=4.0)  # type: ignore[attr-defined]
    (event,) = await collect_events(make_trigger(task_id, poll_interval=0.5))
    assert event["status"] == "success"
    assert calls >= 3  # the failed refresh was retried


# -- service messages that quote signed URLs ----------------------------------------------------------
SIGNED = "https://bucket.test/in.mp4?X-Amz-Signature=SIGSECRET&Expires=1"
RTMP = "rtmp://push.test/live/s?txSecret=SIGSECRET&txTime=1"


@pytest.mark.parametrize("quoted", [SIGNED, RTMP])
def test_a_service_message_never_keeps_a_signature(quoted: str) -> None:
    err = AvatarTaskFailedError(f"cannot fetch {quoted}", service="trtc", action="start", remote_task_id="t")
    assert "SIGSECRET" not in str(err) and "SIGSECRET" not in json.dumps(err.to_dict())
    status = TaskStatus("dreamface", "t", TaskState.FAILED, error_message=f"download of {quoted} failed")
    assert "SIGSECRET" not in json.dumps(status.to_dict())


def test_a_long_service_message_is_capped() -> None:
    err = AvatarNotFoundError("x" * 50_000, service="minimax", action="get_status")
    assert len(err.detail) <= 1000


# -- mounts without hard links ------------------------------------------------------------------------
@pytest.mark.parametrize("code", [errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV])
def test_a_mount_without_hard_links_still_publishes(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    def no_links(src: Any, dst: Any) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "link", no_links)
    dest = tmp_path / "v.mp4"
    download_file(sim.state.file_url("1.mp4"), str(dest), allow_private_hosts=True)
    assert dest.read_bytes() == sample_video()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"]


def test_without_hard_links_an_existing_file_is_still_not_clobbered(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_avatar.destination import Destination

    dest = tmp_path / "v.mp4"

    def no_links_and_a_racing_writer(src: Any, dst: Any) -> None:
        dest.write_bytes(b"someone else's")  # appeared during the download
        raise OSError(errno.EPERM, "no hard links here")

    monkeypatch.setattr(os, "link", no_links_and_a_racing_writer)
    assert Destination  # the publishing step lives there
    with pytest.raises(AvatarDownloadError, match="appeared during the download"):
        download_file(sim.state.file_url("1.mp4"), str(dest), allow_private_hosts=True)
    assert dest.read_bytes() == b"someone else's"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"]


def test_a_body_that_fails_to_decode_is_fetched_again(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A proxy that mangles an encoded body once: the download retries instead of failing raw."""
    import requests

    real = requests.Response.iter_content
    calls = 0

    def mangled_once(self: requests.Response, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise requests.exceptions.ContentDecodingError("bad gzip stream")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(requests.Response, "iter_content", mangled_once)
    dest = tmp_path / "v.mp4"
    download_file(sim.state.file_url("1.mp4"), str(dest), allow_private_hosts=True)
    assert dest.read_bytes() == sample_video() and calls == 2
