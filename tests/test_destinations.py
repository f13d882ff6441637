"""Download destinations: a bad one is refused before the service is asked for a URL.

Each refusal names the destination, the service and the remote task id; nothing is sent to the
service or the file host, and nothing is written (the tests run in an empty current directory,
so a destination that silently resolved against it would show up there).
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_avatar.download import download_file
from airflow_provider_avatar.exceptions import (
    AvatarDestinationError,
    AvatarDownloadError,
    AvatarError,
    AvatarInputError,
)
from airflow_provider_avatar.operators.download import AvatarVideoDownloadOperator
from airflow_provider_avatar.testing.simulator import Simulator, sample_video

USE = "use an absolute path"
#: The module: ``fsspec.registry`` is shadowed by the package's mapping of the same name.
_fsspec_registry = importlib.import_module("fsspec.registry")


@pytest.fixture
def no_s3fs(monkeypatch: pytest.MonkeyPatch) -> None:
    """fsspec knows ``s3`` but its package is missing, whether or not s3fs is installed here."""
    monkeypatch.setitem(
        _fsspec_registry.known_implementations,
        "s3",
        {"class": "avatar_tests_no_such_module.S3FileSystem", "err": "Install s3fs to access S3"},
    )
    monkeypatch.delitem(_fsspec_registry._registry, "s3", raising=False)


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# (destination, overwrite, error class, what the message says). ``{tmp}`` is the test's folder,
# which holds a directory ``existing`` and a regular file ``afile``.
BAD_DESTINATIONS: list[tuple[str, bool, type[AvatarError], str]] = [
    ("ftp:/nonsense::??/x.mp4", False, AvatarInputError, rf"'ftp' is not followed by '://'.*{USE}"),
    ("videos/x.mp4", False, AvatarInputError, rf"relative path would land in the worker's current directory.*{USE}"),
    ("x.mp4", True, AvatarInputError, "neither an absolute path nor an object storage URI"),
    ("foo://bucket/x.mp4", False, AvatarInputError, rf"scheme \('foo'\) that no installed filesystem.*{USE}"),
    ("https://cdn.example/x.mp4", False, AvatarInputError, "web URL and cannot be written to"),
    ("file://relative/x.mp4", False, AvatarInputError, r"names a host \('relative'\).*file:///"),
    (
        "s3://my-bucket/x.mp4",
        False,
        AvatarDestinationError,
        r"\(Install s3fs.*apache-airflow-providers-amazon\[s3fs\]",
    ),
    ("memory://bucket/x.mp4", False, AvatarDestinationError, r"No filesystem registered for scheme memory.*attach\(\)"),
    ("{tmp}/existing", False, AvatarDestinationError, r"is a directory; give a file path such as .*/existing/video"),
    ("{tmp}/existing", True, AvatarDestinationError, "is a directory; give a file path"),
    ("{tmp}/new/", True, AvatarDestinationError, r"is a directory; give a file path such as .*/new/video.mp4"),
    ("memory://bucket/folder/", False, AvatarDestinationError, "is a directory"),
    ("{tmp}/afile/x.mp4", False, AvatarDestinationError, r"cannot be written \(.*/afile is a file, not a folder\)"),
    ("/proc/nonsense/x.mp4", False, AvatarDestinationError, r"cannot be written \(No such file or directory: /proc/"),
]


@pytest.mark.usefixtures("no_s3fs")
@pytest.mark.parametrize(("destination", "overwrite", "error", "says"), BAD_DESTINATIONS)
def test_a_bad_destination_is_refused_before_anything_is_fetched(
    scenext_conn: Simulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    destination: str,
    overwrite: bool,
    error: type[AvatarError],
    says: str,
) -> None:
    if destination.startswith("/proc/") and not Path("/proc/self").exists():
        pytest.skip("needs Linux /proc")
    from airflow_provider_avatar.hooks.scenext import ScenextHook

    remote_task_id = scenext_conn.scenext.add_task(duration=0)  # type: ignore[attr-defined]
    status = ScenextHook().get_status(remote_task_id).to_dict()
    (tmp_path / "existing").mkdir()
    (tmp_path / "afile").write_bytes(b"a file, not a folder")
    monkeypatch.chdir(tmp_path)
    before, sent = _tree(tmp_path), len(scenext_conn.requests())
    dest = destination.format(tmp=tmp_path)
    op = AvatarVideoDownloadOperator(task_id="dl", source=status, destination=dest, overwrite=overwrite)

    with pytest.raises(error, match=says) as info:
        op.execute({})

    message = str(info.value)
    assert type(info.value) is error
    assert "destination " in message and "service=scenext" in message
    assert f"remote_task_id={remote_task_id}" in message
    assert len(scenext_conn.requests()) == sent  # neither the status read nor the file host
    assert _tree(tmp_path) == before


def test_the_callable_source_is_not_called_for_a_bad_destination(tmp_path: Path) -> None:
    asked: list[int] = []

    def source() -> str:
        asked.append(1)
        return "https://cdn.test/v.mp4"

    with pytest.raises(AvatarInputError, match="relative path"):
        download_file(source, "out/v.mp4", service="scenext", remote_task_id="t-1")
    assert asked == []


def test_a_password_in_the_destination_never_shows_in_the_error() -> None:
    with pytest.raises(AvatarDownloadError) as info:
        download_file("https://cdn.test/v.mp4", "ftp://user:hunter2@files.test/v.mp4?token=abc")
    assert "hunter2" not in str(info.value) and "abc" not in str(info.value)
    assert "ftp://user@files.test/v.mp4" in str(info.value)


def test_an_os_error_while_writing_is_wrapped_and_leaves_nothing(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(*args: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(AvatarDownloadError, match=r"/v.mp4' cannot be written \(No space left on device\)"):
        download_file(sim.state.file_url("1.mp4"), str(tmp_path / "v.mp4"), allow_private_hosts=True)
    assert _tree(tmp_path) == []


@pytest.mark.parametrize("destination", ["{tmp}/v.mp4", "file://{tmp}/v.mp4", "~/v.mp4", "{tmp}/a/../v.mp4"])
def test_absolute_destinations_are_written(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, destination: str
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    result = download_file(sim.state.file_url("1.mp4"), destination.format(tmp=tmp_path), allow_private_hosts=True)
    assert (tmp_path / "v.mp4").read_bytes() == sample_video()
    assert result.path.endswith(f"{tmp_path}/v.mp4")


def test_an_attached_object_store_is_written(sim: Simulator, request: pytest.FixtureRequest) -> None:
    from airflow.sdk.io.store import _STORE_CACHE, attach
    from fsspec.implementations.memory import MemoryFileSystem

    fs = MemoryFileSystem()
    _STORE_CACHE.pop("memory", None)  # attach() keeps a store that an earlier lookup left there
    attach("memory", fs=fs)
    request.addfinalizer(lambda: _STORE_CACHE.pop("memory", None))
    request.addfinalizer(lambda: fs.rm("/avatar-tests", recursive=True))
    download_file(sim.state.file_url("1.mp4"), "memory://avatar-tests/v.mp4", allow_private_hosts=True)
    assert fs.cat("/avatar-tests/v.mp4") == sample_video()
    assert fs.ls("/avatar-tests", detail=False) == ["/avatar-tests/v.mp4"]  # no temporary part left
