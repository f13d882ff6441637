"""Stream a remote file to a local path or any ObjectStoragePath, atomically and verified.

The body goes in chunks to a temporary sibling name; it is renamed into place only after its
size (Content-Length / Content-Range) and, when known, checksum verify. An interrupted body is
resumed with a Range request; an expired signed URL (403/410) is refreshed once.
No credentials are ever sent to a download host.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import IO, Any, NamedTuple
from urllib.parse import urljoin

import requests

from airflow_provider_avatar.clock import current as clock
from airflow_provider_avatar.destination import Destination
from airflow_provider_avatar.exceptions import AvatarDownloadError
from airflow_provider_avatar.status import redact_url
from airflow_provider_avatar.transport.policy import RetryPolicy
from airflow_provider_avatar.urlsafety import check_download_url

log = logging.getLogger(__name__)

CHUNK_SIZE = 1024 * 1024
#: Chunks are written in slices of this size (zero-copy): single 1 MiB writes into the page cache
#: ran at about half the speed of 32-128 KiB ones on the benchmark machine (curl writes 16 KiB).
_WRITE_SLICE = 64 * 1024
_WRITEBACK_EVERY = 64 * 1024 * 1024
MAX_REDIRECTS = 5


@dataclass(frozen=True)
class DownloadResult:
    path: str
    bytes: int
    sha256: str
    content_type: str | None
    source_url: str | None  # redacted

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def download_file(
    source: str | Callable[[], str],
    destination: str,
    *,
    allow_private_hosts: bool = False,
    overwrite: bool = False,
    refresh_url: Callable[[], str] | None = None,
    expected_sha256: str | None = None,
    max_attempts: int = 3,
    timeout: tuple[float, float] = (10.0, 300.0),
    chunk_size: int = CHUNK_SIZE,
    service: str = "download",
    remote_task_id: str | None = None,
    session: requests.Session | None = None,
) -> DownloadResult:
    """Download to ``destination`` (local path or object-storage URI); see the module doc.

    ``source`` is a URL or a function returning one (called only after the destination checks,
    so a signed URL is fetched as late as possible). ``refresh_url`` is called once if the host
    answers 403/410 (an expired signature). A bad destination (relative path, unknown scheme,
    missing filesystem package, directory, existing file) is refused before ``source`` is called;
    see :mod:`airflow_provider_avatar.destination`. OS errors become :class:`AvatarDownloadError`.
    """
    target = Destination(destination, service=service, remote_task_id=remote_task_id)
    target.check(overwrite)
    http = session or requests.Session()
    job = _Download(http, service, remote_task_id, allow_private_hosts, timeout, chunk_size)
    try:
        with target.open() as out:  # before the URL is asked for: an unwritable place costs no service call
            url = source() if callable(source) else source
            url = job.fetch(url, out, refresh_url, max_attempts)
            out.flush()
            if target.local:
                os.fsync(out.fileno())
        digest = job.sha.hexdigest()
        if expected_sha256 and digest != expected_sha256.lower():
            raise job.fail(f"sha256 mismatch: expected {expected_sha256}, got {digest}")
        target.publish(overwrite)
    except OSError as exc:
        target.discard()
        if isinstance(exc, requests.RequestException):  # requests' errors are OSErrors too
            raise
        target.os_error(exc)
    except BaseException:
        target.discard()
        raise
    finally:
        if session is None:
            http.close()
    return DownloadResult(str(target.path), job.written, digest, job.content_type, redact_url(url))


class _Download:
    """The state of one transfer: bytes written, running hash, announced total."""

    def __init__(
        self,
        http: requests.Session,
        service: str,
        remote_task_id: str | None,
        allow_private_hosts: bool,
        timeout: tuple[float, float],
        chunk_size: int,
    ) -> None:
        self.http = http
        self.service = service
        self.remote_task_id = remote_task_id
        self.allow_private_hosts = allow_private_hosts
        self.timeout = timeout
        self.chunk_size = chunk_size
        self.sha = hashlib.sha256()
        self.written = 0
        self.total: int | None = None
        self.content_type: str | None = None

    def fail(self, message: str, http_status: int | None = None) -> AvatarDownloadError:
        return AvatarDownloadError(
            message,
            service=self.service,
            action="download",
            remote_task_id=self.remote_task_id,
            http_status=http_status,
        )

    def fetch(self, url: str, out: IO[bytes], refresh_url: Callable[[], str] | None, max_attempts: int) -> str:
        """Fill ``out`` completely, resuming with Range; return the URL that finally worked."""
        check_download_url(url, allow_private_hosts=self.allow_private_hosts, service=self.service)
        attempt = 0
        while True:
            attempt += 1
            problem = self._attempt(url, out)
            if problem is None:
                if self.total is None:
                    log.warning("The server sent no length; the size could not be verified (%d bytes)", self.written)
                return url
            if problem.expired and refresh_url is not None:
                log.info("Download URL refused as expired; asking the service for a fresh one")
                url, refresh_url = refresh_url(), None
                check_download_url(url, allow_private_hosts=self.allow_private_hosts, service=self.service)
                attempt -= 1  # a refresh is not a failed attempt
                continue
            if problem.expired or attempt >= max_attempts:
                raise self.fail(f"download of {redact_url(url)} failed after {attempt} attempts: {problem.message}")
            delay = RetryPolicy().backoff(attempt)
            log.warning("Download of %s: %s; retrying in %.1fs", redact_url(url), problem.message, delay)
            clock().sleep(delay)  # the injected clock: tests wait on virtual time

    def _restart(self, out: IO[bytes], total: int | None) -> None:
        """Start the body again from byte 0 (a first answer, or a server that ignored Range)."""
        if self.written:
            # Object stores' write handles (s3fs, gcsfs, adlfs) cannot seek: nothing to rewind on a
            # first answer, and a restart after bytes went out fails clearly instead of appending.
            try:
                out.seek(0)
                out.truncate()
            except (OSError, ValueError) as exc:
                raise self.fail(
                    f"the server ignored the Range request after {self.written} bytes and the destination "
                    f"cannot be rewound ({exc}); run the task again"
                ) from None
        self.sha, self.written, self.total = hashlib.sha256(), 0, total

    def _attempt(self, url: str, out: IO[bytes]) -> _Problem | None:
        """One GET from the current offset; return None when complete, else what went wrong."""
        headers = {"Accept-Encoding": "identity"}
        if self.written:
            headers["Range"] = f"bytes={self.written}-"
        try:
            resp = _get_following_redirects(
                self.http, url, headers, self.timeout, self.allow_private_hosts, self.service
            )
        except requests.RequestException as exc:
            return _Problem(f"cannot reach the host ({type(exc).__name__})")
        with resp:
            status = resp.status_code
            if status in (403, 410):  # how object stores and CDNs answer an expired signature
                return _Problem(f"HTTP {status} (expired or forbidden)", expired=True)
            if status >= 500 or status == 429:
                return _Problem(f"HTTP {status}")
            if status == 200:
                if self.written:
                    log.warning("Server ignored the Range request; restarting from byte 0")
                self._restart(out, _int_or_none(resp.headers.get("Content-Length")))
            elif status == 206:
                start, total = _content_range(resp)
                if start != self.written or (self.total is not None and total != self.total):
                    self._restart(out, None)  # the next request asks for the whole file again
                    return _Problem("the server answered a different byte range")
                self.total = total
            elif status == 416 and self.written:
                # Nothing left after our offset: a body sent without a length was whole when its
                # connection broke. Any other size means the file changed: start again.
                _, total = _content_range(resp)  # "bytes */<size>"
                if total == self.written:
                    self.total = total
                    return None
                self._restart(out, None)
                return _Problem(
                    f"HTTP 416: the file has {total if total is not None else 'an unknown number of'} bytes"
                )
            else:
                raise self.fail(f"download of {redact_url(url)} answered HTTP {status}", status)
            self.content_type = resp.headers.get("Content-Type", self.content_type)
            try:
                with _Sink(self, out) as sink:
                    for chunk in resp.iter_content(self.chunk_size):
                        sink.put(chunk)
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError,
            ) as exc:
                return _Problem(f"interrupted at {self.written} bytes ({type(exc).__name__})")
        if self.total is not None and self.written > self.total:
            raise self.fail(f"received {self.written} bytes, more than the announced {self.total}")
        if self.total is not None and self.written < self.total:
            return _Problem(f"truncated: {self.written} of {self.total} bytes")
        return None


class _Sink:
    """Hashes each chunk in a background thread while this thread writes it and reads the next.

    SHA-256 releases the GIL, so it runs beside the socket reads and file writes instead of after
    them (in line it cost ~0.6 s per GiB here; benchmarks/README.md). The file is written in this
    thread, in 64 KiB slices (a writer thread lost more to GIL hand-offs than it saved), and a
    local file's writeback is started every 64 MiB. At most two chunks are held; the hash is
    final once the sink is closed.
    """

    def __init__(self, job: _Download, out: IO[bytes]) -> None:
        self.job = job
        self.out = out
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="avatar-download-sha256")
        self._hashing: Future[None] | None = None
        try:
            self._fd: int | None = out.fileno()
        except (AttributeError, OSError, ValueError):  # object stores: no local file
            self._fd = None
        self._synced = job.written

    def _settle(self) -> None:
        hashing, self._hashing = self._hashing, None
        if hashing is not None:
            hashing.result()

    def put(self, chunk: bytes) -> None:
        self._settle()  # chunks are hashed in order, one at a time
        self._hashing = self._pool.submit(self.job.sha.update, chunk)
        view = memoryview(chunk)
        for start in range(0, len(view), _WRITE_SLICE):
            self.out.write(view[start : start + _WRITE_SLICE])
        self.job.written += len(chunk)
        if self._fd is not None and self.job.written - self._synced >= _WRITEBACK_EVERY:
            self._start_writeback()

    def _start_writeback(self) -> None:
        """Let the kernel start writing what we wrote so far, so the final ``fsync`` has little
        left to wait for; it also keeps a large download from filling the page cache."""
        self.out.flush()
        if self._fd is not None and hasattr(os, "posix_fadvise"):
            os.posix_fadvise(self._fd, self._synced, self.job.written - self._synced, os.POSIX_FADV_DONTNEED)
        self._synced = self.job.written

    def __enter__(self) -> _Sink:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._settle()
        finally:
            self._pool.shutdown()


class _Problem(NamedTuple):
    """Why an attempt did not complete; ``expired`` asks for a fresh signed URL."""

    message: str
    expired: bool = False


def _get_following_redirects(
    http: requests.Session,
    url: str,
    headers: dict[str, str],
    timeout: tuple[float, float],
    allow_private_hosts: bool,
    service: str,
) -> requests.Response:
    """GET with redirects followed by hand, so every hop passes the URL safety check."""
    for _ in range(MAX_REDIRECTS + 1):
        resp = http.get(url, headers=headers, stream=True, timeout=timeout, allow_redirects=False)
        if resp.status_code not in (301, 302, 303, 307, 308):
            return resp
        resp.close()
        url = urljoin(url, resp.headers.get("Location", ""))
        check_download_url(url, allow_private_hosts=allow_private_hosts, service=service)
    raise AvatarDownloadError("too many redirects", service=service, action="download")


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _content_range(resp: requests.Response) -> tuple[int | None, int | None]:
    """(first byte, total size) from ``Content-Range: bytes a-b/total``; None where unreadable."""
    value = resp.headers.get("Content-Range", "")
    if not value.startswith("bytes ") or "/" not in value:
        return None, None
    span, _, total = value[6:].partition("/")
    return _int_or_none(span.partition("-")[0]), _int_or_none(total)
