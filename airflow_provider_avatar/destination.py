"""Where a download goes: an absolute local path or an object-storage URI, checked before any fetch.

A destination is refused before the service is asked for a URL when it cannot be what the user
meant: a relative path (it would land in whatever the worker's current directory is), a scheme
no fsspec filesystem knows, an http(s) URL, a ``file://`` URI with a host, a scheme no Airflow
filesystem serves or whose package is missing (``s3://`` needs the Amazon provider with s3fs),
or a directory (an existing one, or a trailing slash). A malformed, relative or unknown
destination is :class:`AvatarInputError`; one the worker cannot use before anything is fetched (a
missing package, a directory, an existing file, a place it cannot write) is
:class:`AvatarDestinationError` (an input error and a download error); an OS error once the
transfer has started is :class:`AvatarDownloadError`. All name the service, the remote task id and
the destination (without any password or query string).

Writing goes to a temporary sibling name that is renamed into place only when complete, so no
partial file is ever where a finished one is expected.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import uuid
from pathlib import Path
from typing import IO, Any, NoReturn
from urllib.parse import urlsplit, urlunsplit

from airflow_provider_avatar.exceptions import AvatarDestinationError, AvatarDownloadError, AvatarInputError

log = logging.getLogger(__name__)

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
_LOOKS_LIKE_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]+):")
#: What to install for a scheme: ObjectStoragePath writes through the filesystem an Airflow
#: provider registers for it (the fsspec package alone is not enough).
_BACKEND_PACKAGES = {
    "s3": "apache-airflow-providers-amazon[s3fs]",
    "s3a": "apache-airflow-providers-amazon[s3fs]",
    "gs": "apache-airflow-providers-google",
    "gcs": "apache-airflow-providers-google",
    "abfs": "apache-airflow-providers-microsoft-azure",
    "abfss": "apache-airflow-providers-microsoft-azure",
    "az": "apache-airflow-providers-microsoft-azure",
    "adl": "apache-airflow-providers-microsoft-azure",
}
_USE_INSTEAD = "use an absolute path (/data/videos/video.mp4) or an object storage URI (s3://bucket/video.mp4)"


def shown(destination: str) -> str:
    """``destination`` fit for messages: a password in the userinfo and the query are dropped."""
    if "://" not in destination:
        return destination
    parts = urlsplit(destination)
    user, at, host = parts.netloc.rpartition("@")
    netloc = f"{user.partition(':')[0]}{at}{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class Destination:
    """A checked destination: write to a temporary sibling, then publish (rename) or discard it."""

    def __init__(self, destination: str, *, service: str = "download", remote_task_id: str | None = None) -> None:
        self.service = service
        self.remote_task_id = remote_task_id
        #: Whether the temporary file was opened: until then nothing was fetched or written.
        self.opened = False
        self.shown = shown(destination)
        self.path: Any = self._resolve(destination)
        self.local = isinstance(self.path, Path)
        self.tmp: Any = self.path.parent / f".{self.path.name}.{uuid.uuid4().hex}.part"

    # -- errors --------------------------------------------------------------------------------
    def _error(self, cls: type[AvatarInputError | AvatarDownloadError], message: str) -> NoReturn:
        raise cls(message, service=self.service, action="download", remote_task_id=self.remote_task_id)

    def refuse(self, why: str) -> NoReturn:
        """The destination string itself is unusable."""
        self._error(AvatarInputError, f"destination {self.shown!r} {why}")

    def fail(self, why: str) -> NoReturn:
        """The worker cannot write there: an input error before the transfer, a download error during it."""
        cls = AvatarDownloadError if self.opened else AvatarDestinationError
        self._error(cls, f"destination {self.shown!r} {why}")

    def os_error(self, exc: OSError) -> NoReturn:
        detail = exc.strerror or type(exc).__name__
        where = f": {exc.filename}" if exc.filename else ""
        self.fail(f"cannot be written ({detail}{where})")

    # -- resolution: no I/O beyond imports and resolving local symlinks ------------------------
    def _resolve(self, destination: str) -> Any:
        if not destination.strip() or destination != destination.strip():
            self.refuse(f"is empty or has surrounding spaces; {_USE_INSTEAD}")
        if "://" in destination:
            return self._object_storage_path(destination)
        path = Path(destination).expanduser()
        if not path.is_absolute():
            scheme = _LOOKS_LIKE_SCHEME.match(destination)
            hint = f" ({scheme.group(1)!r} is not followed by '://')" if scheme else ""
            self.refuse(
                f"is neither an absolute path nor an object storage URI{hint}; a relative path would land in "
                f"the worker's current directory: {_USE_INSTEAD}"
            )
        if destination.endswith(("/", os.sep)):
            self._refuse_directory()
        try:
            return path.resolve()
        except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
            self.fail(f"cannot be resolved ({exc})")

    def _object_storage_path(self, destination: str) -> Any:
        scheme = destination.partition("://")[0].lower()
        if not _SCHEME.fullmatch(scheme):
            self.refuse(f"has an invalid scheme {scheme!r}; {_USE_INSTEAD}")
        if scheme in ("http", "https"):
            self.refuse(f"is a web URL and cannot be written to; {_USE_INSTEAD}")
        netloc = urlsplit(destination).netloc
        if scheme in ("file", "local") and netloc:
            # ObjectStoragePath reads file://host/x as the relative path host/x.
            self.refuse(f"names a host ({netloc!r}); a file URI needs an absolute path: file:///data/video.mp4")
        from fsspec.registry import get_filesystem_class

        try:
            get_filesystem_class(scheme)
        except ValueError:
            self.refuse(f"has a scheme ({scheme!r}) that no installed filesystem (fsspec) knows; {_USE_INSTEAD}")
        except ImportError as exc:
            self._missing_package(scheme, str(exc))
        from airflow.providers.common.compat.sdk import ObjectStoragePath

        try:
            path = ObjectStoragePath(destination)
        except (ValueError, TypeError) as exc:
            self.refuse(f"cannot be resolved ({exc}); {_USE_INSTEAD}")
        if destination.endswith("/") or not path.name:
            self._refuse_directory()
        return path

    def _missing_package(self, scheme: str, detail: str) -> NoReturn:
        package = _BACKEND_PACKAGES.get(scheme) or f"an Airflow provider that serves {scheme}:// (or attach() one)"
        self.fail(f"needs a {scheme}:// filesystem this worker lacks ({detail}); install {package}")

    def _check_filesystem(self) -> None:
        """Open the filesystem the write will use: Airflow's for the scheme (built in for file://,
        registered by providers or ``attach()`` for the rest), with the URI's connection if any."""
        try:
            self.path.fs  # noqa: B018 - the property resolves (and caches) the filesystem
        except ImportError as exc:
            self._missing_package(self.path.protocol, str(exc))
        except ValueError as exc:  # airflow.sdk.io: "No filesystem registered for scheme ..."
            self._missing_package(self.path.protocol, str(exc))

    def _refuse_directory(self) -> NoReturn:
        name = self.shown.rstrip("/" + os.sep) or self.shown
        self.fail(f"is a directory; give a file path such as {name}/video.mp4 (refused also with overwrite=True)")

    # -- the file system -----------------------------------------------------------------------
    def check(self, overwrite: bool) -> None:
        """Refuse a directory, and an existing file unless ``overwrite``; OS errors are wrapped."""
        if not self.local:
            self._check_filesystem()
        try:
            if self.path.is_dir():
                self._refuse_directory()
            exists = bool(self.path.exists())
        except OSError as exc:
            self.os_error(exc)
        if exists and not overwrite:
            self.fail("exists; pass overwrite=True to replace it")

    def open(self) -> IO[bytes]:
        """Create the parent folder (local only) and open the temporary file for writing."""
        try:
            # Object stores have no folders (and mkdir may mean "create a bucket"): local ones only.
            if self.local or getattr(self.path, "protocol", None) in ("file", "local"):
                self.path.parent.mkdir(parents=True, exist_ok=True)
            handle: IO[bytes] = self.tmp.open("wb")
        except FileExistsError as exc:  # mkdir met a file where a folder belongs
            self.fail(f"cannot be written ({exc.filename} is a file, not a folder)")
        except OSError as exc:
            self.os_error(exc)
        self.opened = True
        return handle

    def publish(self, overwrite: bool) -> None:
        """Move the finished temporary file into place; never clobber unless ``overwrite``."""
        try:
            if self.local:
                if overwrite:
                    os.replace(self.tmp, self.path)
                else:
                    self._publish_no_clobber()
                return
            if not overwrite and self.path.exists():
                raise FileExistsError(str(self.path))
            self.tmp.rename(self.path)
        except FileExistsError:
            self.fail("appeared during the download; not overwritten")
        except IsADirectoryError:
            self._refuse_directory()
        except OSError as exc:
            self.os_error(exc)

    def _publish_no_clobber(self) -> None:
        """A hard link publishes atomically and fails if the file appeared meanwhile; mounts without
        hard links (gcsfuse, SMB, some FUSE) get a check and a rename instead (a small race)."""
        try:
            os.link(self.tmp, self.path)
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                raise
            if self.path.exists():
                raise FileExistsError(str(self.path)) from None
            os.rename(self.tmp, self.path)
            return
        os.unlink(self.tmp)

    def discard(self) -> None:
        try:
            if self.tmp.exists():
                self.tmp.unlink()
        except OSError:
            log.warning("Could not remove temporary file %s", self.tmp)
