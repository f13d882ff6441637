"""Downloads: atomic, verified, resumable, SSRF-safe, and never carrying credentials."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import pytest
import requests_mock as rm

from airflow_provider_avatar.download import download_file
from airflow_provider_avatar.exceptions import AvatarDownloadError, AvatarTaskFailedError, AvatarUnsafeURLError
from airflow_provider_avatar.operators.download import AvatarVideoDownloadOperator
from airflow_provider_avatar.testing.simulator import Faults, Simulator, sample_video
from airflow_provider_avatar.urlsafety import check_download_url
from tests.conftest import SENTINEL_KEY

SAMPLE_SHA = hashlib.sha256(sample_video()).hexdigest()


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_download_verifies_and_reports(sim: Simulator, tmp_path: Path) -> None:
    dest = tmp_path / "out" / "v.mp4"
    result = download_file(sim.state.file_url("1.mp4"), str(dest), allow_private_hosts=True)
    assert dest.read_bytes() == sample_video()
    assert (result.bytes, result.sha256, result.content_type) == (len(sample_video()), SAMPLE_SHA, "video/mp4")
    assert result.source_url is not None and "Signature" not in result.source_url
    assert _leftovers(dest.parent) == ["v.mp4"]


def test_truncated_body_publishes_nothing(sim: Simulator, tmp_path: Path) -> None:
    sim.set_faults("files", Faults(truncate_downloads=True))
    dest = tmp_path / "v.mp4"
    with pytest.raises(AvatarDownloadError, match=r"truncated|interrupted"):
        download_file(sim.state.file_url("blob-300000.bin"), str(dest), allow_private_hosts=True, max_attempts=2)
    assert _leftovers(tmp_path) == []  # neither the file nor a temporary part


def test_interrupted_body_resumes_with_range(requests_mock: rm.Mocker, tmp_path: Path) -> None:
    body = bytes(range(256)) * 40
    url = "https://cdn.test/v.mp4"
    requests_mock.get(
        url,
        [
            {"content": body[:3000], "headers": {"Content-Length": str(len(body))}},
            {
                "content": body[3000:],
                "status_code": 206,
                "headers": {"Content-Range": f"bytes 3000-{len(body) - 1}/{len(body)}"},
            },
        ],
    )
    result = download_file(url, str(tmp_path / "v.mp4"), allow_private_hosts=True)
    assert (tmp_path / "v.mp4").read_bytes() == body and result.sha256 == hashlib.sha256(body).hexdigest()
    assert requests_mock.request_history[1].headers["Range"] == "bytes=3000-"


def test_resume_restarts_when_range_is_ignored(requests_mock: rm.Mocker, tmp_path: Path) -> None:
    body = b"x" * 5000
    url = "https://cdn.test/v.mp4"
    requests_mock.get(
        url,
        [
            {"content": body[:1000], "headers": {"Content-Length": "5000"}},
            {"content": body, "headers": {"Content-Length": "5000"}},  # 200: the whole file again
        ],
    )
    result = download_file(url, str(tmp_path / "v.mp4"), allow_private_hosts=True)
    assert result.bytes == 5000 and (tmp_path / "v.mp4").read_bytes() == body


def test_a_resume_answered_with_another_range_restarts_cleanly(requests_mock: rm.Mocker, tmp_path: Path) -> None:
    body = bytes(range(256)) * 4
    url = "https://cdn.test/v.mp4"
    requests_mock.get(
        url,
        [
            {"content": body[:500], "headers": {"Content-Length": "1024"}},
            {"content": body[:100], "status_code": 206, "headers": {"Content-Range": "bytes 0-99/1024"}},
            {"content": body, "headers": {"Content-Length": "1024"}},
        ],
    )
    result = download_file(url, str(tmp_path / "v.mp4"), allow_private_hosts=True)
    assert (tmp_path / "v.mp4").read_bytes() == body and result.bytes == 1024
    assert [r.headers.get("Range") for r in requests_mock.request_history] == [None, "bytes=500-", None]


class _BreaksAtTheEnd:
    """A body sent without a length whose connection is reset after its last byte."""

    closed = False

    def __init__(self, data: bytes) -> None:
        self.data = io.BytesIO(data)

    def read(self, amt: int = -1) -> bytes:
        data = self.data.read(amt)
        if not data:
            raise ConnectionResetError("connection reset by peer")
        return data

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("resume_answer", "ranges"),
    [
        # the server has no byte after ours: the first body was whole
        ({"status_code": 416, "headers": {"Content-Range": "bytes */4096"}}, [None, "bytes=4096-"]),
        # the file is now larger (or the server does not say): start again from byte 0
        ({"status_code": 416, "headers": {"Content-Range": "bytes */9999"}}, [None, "bytes=4096-", None]),
        ({"status_code": 416}, [None, "bytes=4096-", None]),
    ],
    ids=["whole", "changed", "unsaid"],
)
def test_a_resume_past_the_end_is_complete_only_when_the_size_matches(
    requests_mock: rm.Mocker, tmp_path: Path, resume_answer: dict[str, Any], ranges: list[str | None]
) -> None:
    body = bytes(range(256)) * 16  # 4,096 bytes: whole chunks, so every byte arrives before the reset
    url = "https://cdn.test/v.mp4"
    requests_mock.get(url, [{"body": _BreaksAtTheEnd(body)}, resume_answer, {"content": body}])
    result = download_file(url, str(tmp_path / "v.mp4"), allow_private_hosts=True, chunk_size=1024)
    assert (tmp_path / "v.mp4").read_bytes() == body and result.sha256 == hashlib.sha256(body).hexdigest()
    assert [r.headers.get("Range") for r in requests_mock.request_history] == ranges
    assert _leftovers(tmp_path) == ["v.mp4"]


def test_more_bytes_than_announced_fail(requests_mock: rm.Mocker, tmp_path: Path) -> None:
    requests_mock.get("https://cdn.test/v.mp4", content=b"x" * 100, headers={"Content-Length": "10"})
    with pytest.raises(AvatarDownloadError, match="more than the announced"):
        download_file("https://cdn.test/v.mp4", str(tmp_path / "v.mp4"), allow_private_hosts=True)
    assert _leftovers(tmp_path) == []


def test_checksum_mismatch_fails(sim: Simulator, tmp_path: Path) -> None:
    with pytest.raises(AvatarDownloadError, match="sha256 mismatch"):
        download_file(
            sim.state.file_url("1.mp4"), str(tmp_path / "v.mp4"), allow_private_hosts=True, expected_sha256="0" * 64
        )
    assert _leftovers(tmp_path) == []


def test_no_overwrite_unless_asked(sim: Simulator, tmp_path: Path) -> None:
    dest = tmp_path / "v.mp4"
    dest.write_bytes(b"keep me")
    with pytest.raises(AvatarDownloadError, match="exists"):
        download_file(sim.state.file_url("1.mp4"), str(dest), allow_private_hosts=True)
    assert dest.read_bytes() == b"keep me"
    download_file(sim.state.file_url("1.mp4"), str(dest), allow_private_hosts=True, overwrite=True)
    assert dest.read_bytes() == sample_video()


def test_expired_url_is_refreshed_once(sim: Simulator, tmp_path: Path) -> None:
    calls: list[int] = []

    def refresh() -> str:
        calls.append(1)
        return sim.state.file_url("1.mp4")

    expired = sim.state.file_url("1.mp4", ttl=-10)
    download_file(expired, str(tmp_path / "v.mp4"), allow_private_hosts=True, refresh_url=refresh)
    assert calls == [1]
    with pytest.raises(AvatarDownloadError, match="HTTP 403"):
        download_file(expired, str(tmp_path / "w.mp4"), allow_private_hosts=True, refresh_url=lambda: expired)


def test_object_storage_destination(sim: Simulator, tmp_path: Path) -> None:
    uri = f"file://{tmp_path}/store/v.mp4"
    result = download_file(sim.state.file_url("1.mp4"), uri, allow_private_hosts=True)
    assert (tmp_path / "store" / "v.mp4").read_bytes() == sample_video()
    assert result.sha256 == SAMPLE_SHA
    assert _leftovers(tmp_path / "store") == ["v.mp4"]


def _resolver(mapping: dict[str, list[str]]) -> Any:
    return lambda host, port: mapping[host]


@pytest.mark.parametrize(
    ("url", "addresses", "why"),
    [
        ("file:///etc/passwd", [], "only http and https"),
        ("ftp://cdn.test/v.mp4", [], "only http and https"),
        ("http:///v.mp4", [], "no host"),
        ("http://127.0.0.1/v.mp4", ["127.0.0.1"], "non-public address"),
        ("http://[::1]/v.mp4", ["::1"], "non-public address"),
        ("http://10.1.2.3/v.mp4", ["10.1.2.3"], "non-public address"),
        ("http://169.254.169.254/latest/meta-data", ["169.254.169.254"], "non-public address"),
        ("http://cdn.test/v.mp4", ["93.184.216.34", "192.168.1.9"], "non-public address"),
        ("http://cdn.test/v.mp4", ["::ffff:10.0.0.1"], "non-public address"),
    ],
)
def test_unsafe_urls_are_refused(url: str, addresses: list[str], why: str) -> None:
    host = url.split("//", 1)[1].split("/", 1)[0].strip("[]")
    with pytest.raises(AvatarUnsafeURLError, match=why):
        check_download_url(url, allow_private_hosts=False, resolver=_resolver({host: addresses}))


def test_public_url_passes_and_private_needs_the_connection_flag() -> None:
    check_download_url(
        "https://cdn.test/v.mp4", allow_private_hosts=False, resolver=_resolver({"cdn.test": ["93.184.216.34"]})
    )
    check_download_url("http://127.0.0.1/v.mp4", allow_private_hosts=True)


def test_redirect_to_private_host_is_refused(
    requests_mock: rm.Mocker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        "airflow_provider_avatar.urlsafety.resolve_host",
        _resolver({"cdn.test": ["93.184.216.34"], "169.254.169.254": ["169.254.169.254"]}),
    )
    requests_mock.get(
        "https://cdn.test/v.mp4", status_code=302, headers={"Location": "http://169.254.169.254/latest/meta-data"}
    )
    with pytest.raises(AvatarUnsafeURLError):
        download_file("https://cdn.test/v.mp4", str(tmp_path / "v.mp4"))
    assert _leftovers(tmp_path) == []


# -- the operator ---------------------------------------------------------------------------------


def _status_dict(sim: Simulator, outcome: str = "completed") -> dict[str, Any]:
    from airflow_provider_avatar.hooks.scenext import ScenextHook

    task_id = sim.scenext.add_task(duration=0, outcome=outcome)  # type: ignore[attr-defined]
    return ScenextHook().get_status(task_id).to_dict()


def test_operator_re_resolves_status_dict_and_never_sends_the_key(scenext_conn: Simulator, tmp_path: Path) -> None:
    status = _status_dict(scenext_conn)
    assert "Signature" not in status["video_url"]  # redacted in XCom: the operator must re-resolve
    op = AvatarVideoDownloadOperator(task_id="dl", source=status, destination=str(tmp_path / "v.mp4"))
    result = op.execute({})
    assert result["sha256"] == SAMPLE_SHA and result["remote_task_id"] == status["remote_task_id"]
    files = scenext_conn.requests("files")
    assert files and all(r.authorization is None for r in files)
    assert all(r.authorization == f"Bearer {SENTINEL_KEY}" for r in scenext_conn.requests("scenext"))
    assert {r.host for r in files}.isdisjoint({r.host for r in scenext_conn.requests("scenext")})


def test_operator_accepts_rendered_dict_string_and_plain_url(scenext_conn: Simulator, tmp_path: Path) -> None:
    status = _status_dict(scenext_conn)
    AvatarVideoDownloadOperator(task_id="a", source=repr(status), destination=str(tmp_path / "a.mp4")).execute({})
    AvatarVideoDownloadOperator(
        task_id="b", source=scenext_conn.state.file_url("x.mp4"), service="scenext", destination=str(tmp_path / "b.mp4")
    ).execute({})
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes() == sample_video()


def test_operator_refuses_loopback_without_a_connection_flag(tmp_path: Path, sim: Simulator) -> None:
    op = AvatarVideoDownloadOperator(task_id="a", source=sim.state.file_url("x.mp4"), destination=str(tmp_path / "a"))
    with pytest.raises(AvatarUnsafeURLError, match="allow_private_hosts"):
        op.execute({})


def test_operator_fails_clearly_for_a_task_without_video(scenext_conn: Simulator, tmp_path: Path) -> None:
    status = _status_dict(scenext_conn, outcome="failed")
    op = AvatarVideoDownloadOperator(task_id="a", source=status, destination=str(tmp_path / "a.mp4"))
    with pytest.raises(AvatarTaskFailedError, match="no video to download"):
        op.execute({})
    assert _leftovers(tmp_path) == []


def test_operator_checks_the_destination_before_asking_the_service(scenext_conn: Simulator, tmp_path: Path) -> None:
    status = _status_dict(scenext_conn)
    (tmp_path / "v.mp4").write_bytes(b"old")
    before = len(scenext_conn.requests("scenext"))
    op = AvatarVideoDownloadOperator(task_id="a", source=status, destination=str(tmp_path / "v.mp4"))
    with pytest.raises(AvatarDownloadError, match="exists") as info:
        op.execute({})
    assert len(scenext_conn.requests("scenext")) == before
    assert f"remote_task_id={status['remote_task_id']}" in str(info.value)


def test_the_suite_cannot_reach_a_real_host() -> None:
    import socket

    with socket.socket() as sock, pytest.raises(AssertionError, match="local simulator only"):
        sock.connect(("93.184.216.34", 443))


# -- the fresh-URL seam ---------------------------------------------------------------------------


def test_fresh_video_url_is_signed_now_and_names_a_task_without_video(scenext_conn: Simulator) -> None:
    from airflow_provider_avatar.hooks.scenext import ScenextHook

    done = scenext_conn.scenext.add_task(duration=0)  # type: ignore[attr-defined]
    failed = scenext_conn.scenext.add_task(duration=0, outcome="failed")  # type: ignore[attr-defined]
    hook = ScenextHook()
    url = hook.fresh_video_url(done)
    in_xcom = hook.get_status(done).to_dict()["video_url"]
    assert "Signature=" in url and "Signature" not in in_xcom and url.split("?")[0] == in_xcom
    with pytest.raises(AvatarTaskFailedError, match="task is FAILED and has no video to download") as info:
        hook.fresh_video_url(failed)
    assert f"remote_task_id={failed}" in str(info.value) and "service=scenext" in str(info.value)


def test_the_operator_asks_the_hook_for_the_url(
    scenext_conn: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A service whose URL needs a second call (MiniMax: file id → URL) only overrides the hook."""
    from airflow_provider_avatar.hooks.scenext import ScenextHook

    asked: list[str] = []

    class SecondCallHook(ScenextHook):
        def fresh_video_url(self, remote_task_id: str) -> str:
            asked.append(remote_task_id)
            return scenext_conn.state.file_url("from-the-override.mp4")

    monkeypatch.setattr("airflow_provider_avatar.services.make_hook", lambda service, conn_id=None: SecondCallHook())
    status = _status_dict(scenext_conn)
    reads = len(scenext_conn.requests("scenext"))
    op = AvatarVideoDownloadOperator(task_id="dl", source=status, destination=str(tmp_path / "v.mp4"))
    result = op.execute({})
    assert asked == [status["remote_task_id"]] and len(scenext_conn.requests("scenext")) == reads
    assert result["source_url"].endswith("/from-the-override.mp4")
    assert (tmp_path / "v.mp4").read_bytes() == sample_video()
