"""Checks 10 and 11 for every service with a video: downloads are bounded and atomic; URLs from a
service are untrusted (http(s) only, private hosts refused unless allowed, no key to the file host)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_provider_avatar.exceptions import AvatarDownloadError, AvatarError, AvatarUnsafeURLError
from airflow_provider_avatar.operators.download import AvatarVideoDownloadOperator
from airflow_provider_avatar.services import hook_class
from airflow_provider_avatar.testing.simulator import Faults, sample_video
from tests.reliability.conftest import Svc


def _finished(svc: Svc, check: str) -> dict[str, Any]:
    """A finished task's status, as the sensor pushes it to XCom."""
    svc.skip_unless(check)
    task_id = svc.script("succeeds", duration=0.0)
    return svc.hook().get_status(task_id).to_dict()


def _download(status: dict[str, Any], destination: Path, **kwargs: Any) -> dict[str, Any]:
    operator = AvatarVideoDownloadOperator(task_id="download", source=status, destination=str(destination), **kwargs)
    return operator.execute({})


def _file_host_requests(svc: Svc) -> list[Any]:
    return svc.simulator.requests("files")


@pytest.mark.check(10)
def test_a_download_is_verified_and_then_published(svc: Svc, tmp_path: Path) -> None:
    result = _download(_finished(svc, "check-10"), tmp_path / "v.mp4")
    assert (tmp_path / "v.mp4").read_bytes() == sample_video()
    assert result["bytes"] == len(sample_video()) and "Signature" not in str(result)
    assert [p.name for p in tmp_path.iterdir()] == ["v.mp4"]


@pytest.mark.check(10)
def test_a_truncated_download_is_never_published(svc: Svc, tmp_path: Path) -> None:
    status = _finished(svc, "check-10")
    svc.simulator.set_faults("files", Faults(truncate_downloads=True))
    with pytest.raises(AvatarDownloadError):
        _download(status, tmp_path / "v.mp4")
    assert list(tmp_path.iterdir()) == []  # no file, no partial, no temporary left behind
    assert len(_file_host_requests(svc)) > 1  # retried before giving up


@pytest.mark.check(10)
def test_an_existing_file_is_not_overwritten_unless_asked(svc: Svc, tmp_path: Path) -> None:
    status = _finished(svc, "check-10")
    (tmp_path / "v.mp4").write_bytes(b"mine")
    with pytest.raises(AvatarError):
        _download(status, tmp_path / "v.mp4")
    assert (tmp_path / "v.mp4").read_bytes() == b"mine"
    _download(status, tmp_path / "v.mp4", overwrite=True)
    assert (tmp_path / "v.mp4").read_bytes() == sample_video()


@pytest.mark.check(10)
def test_an_expired_signed_url_is_refreshed_once_through_the_service(
    svc: Svc, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    status = _finished(svc, "check-10")
    cls = hook_class(svc.key)
    real = cls.fresh_video_url
    urls: list[str] = []

    def expired_first(self: Any, remote_task_id: str) -> str:
        url = real(self, remote_task_id)
        if not urls:  # the first URL has expired by the time it is fetched (its signature no longer matches)
            url = url.replace("Expires=", "Expires=1")
        urls.append(url)
        return url

    monkeypatch.setattr(cls, "fresh_video_url", expired_first)
    _download(status, tmp_path / "v.mp4")
    assert len(urls) == 2 and (tmp_path / "v.mp4").read_bytes() == sample_video()
    assert _file_host_requests(svc)[0].status in (403, 410)


@pytest.mark.check(11)
def test_the_key_never_goes_to_the_file_host(svc: Svc, tmp_path: Path) -> None:
    _download(_finished(svc, "check-11"), tmp_path / "v.mp4")
    files = _file_host_requests(svc)
    assert files and all(r.authorization is None for r in files)
    assert all(svc.secret not in r.path for r in files)


@pytest.mark.check(11)
def test_a_private_host_is_refused_unless_the_connection_allows_it(svc: Svc, tmp_path: Path) -> None:
    status = _finished(svc, "check-11")
    svc.connect(allow_private_hosts=False)
    with pytest.raises(AvatarUnsafeURLError):
        _download(status, tmp_path / "v.mp4")
    assert _file_host_requests(svc) == [] and list(tmp_path.iterdir()) == []


@pytest.mark.check(11)
@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://files.test/v.mp4", "gopher://files.test/v"])
def test_only_http_urls_are_fetched(svc: Svc, tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    status = _finished(svc, "check-11")
    monkeypatch.setattr(hook_class(svc.key), "fresh_video_url", lambda self, remote_task_id: url)
    with pytest.raises(AvatarUnsafeURLError):
        _download(status, tmp_path / "v.mp4")
    assert list(tmp_path.iterdir()) == []
