"""The simulator's file host: signed, expiring URLs with Range support, like an object store CDN."""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from airflow_provider_avatar.testing.simulator import SimState

_CHUNK = 1024 * 1024
_BLOB = re.compile(r"^blob-(\d+)\.bin$")
_PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)
# One chunk of a repeating 0..255 pattern, plus 255 bytes so any chunk-sized slice fits.
_PATTERN = memoryview(bytes(range(256)) * (_CHUNK // 256 + 1))


def _content(name: str) -> tuple[int, str, bytes | None]:
    """(size, content type, bytes or None for a generated blob) of a served file."""
    from airflow_provider_avatar.testing.simulator import sample_video

    if name.endswith(".mp4"):
        data = sample_video()
        return len(data), "video/mp4", data
    if name.endswith(".png"):
        return len(_PNG_1PX), "image/png", _PNG_1PX
    match = _BLOB.match(name)
    if match:
        return int(match.group(1)), "application/octet-stream", None
    raise web.HTTPNotFound(text="NoSuchKey")


def _blob_bytes(start: int, end: int) -> memoryview:
    """Bytes ``start..end`` (exclusive, at most one chunk) of the generated blob."""
    offset = start % 256
    return _PATTERN[offset : offset + (end - start)]


def _parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    if not header or not header.startswith("bytes="):
        return None
    first, _, last = header[6:].partition("-")
    if not first:
        raise web.HTTPRequestRangeNotSatisfiable(headers={"Content-Range": f"bytes */{size}"})
    start = int(first)
    end = min(int(last) + 1, size) if last else size
    if start >= size or end <= start:
        raise web.HTTPRequestRangeNotSatisfiable(headers={"Content-Range": f"bytes */{size}"})
    return start, end


def routes(state: SimState) -> list[web.RouteDef]:
    async def get_file(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        expires = request.query.get("Expires", "")
        signature = request.query.get("Signature", "")
        if not expires.isdigit() or signature != state.sign(name, int(expires)):
            raise web.HTTPForbidden(
                text="<Error><Code>SignatureDoesNotMatch</Code></Error>", content_type="application/xml"
            )
        if int(expires) < state.clock():
            raise web.HTTPForbidden(
                text="<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>",
                content_type="application/xml",
            )
        size, content_type, data = _content(name)
        span = _parse_range(request.headers.get("Range"), size)
        start, end = span or (0, size)
        response = web.StreamResponse(status=206 if span else 200)
        response.content_type = content_type
        response.content_length = end - start
        response.headers["Accept-Ranges"] = "bytes"
        if span:
            response.headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        await response.prepare(request)
        if request.method == "HEAD":
            return response
        faults = state.faults.get("files")
        stop_at = start + (end - start) // 2 if faults is not None and faults.truncate_downloads else end
        position = start
        while position < stop_at:
            upto = min(position + _CHUNK, stop_at)
            chunk: bytes | memoryview = data[position:upto] if data is not None else _blob_bytes(position, upto)
            await response.write(chunk)
            position = upto
        if stop_at < end:  # truncated: announce the full length, then drop the connection
            await asyncio.sleep(0.01)
            if request.transport is not None:
                request.transport.abort()
            return response
        await response.write_eof()
        return response

    return [web.get("/files/{name}", get_file, allow_head=True)]
