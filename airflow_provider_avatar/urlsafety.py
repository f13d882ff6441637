"""Which download URLs may be fetched. URLs that come from a service are untrusted input."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from airflow_provider_avatar.exceptions import AvatarUnsafeURLError
from airflow_provider_avatar.status import redact_url

Resolver = Callable[[str, int], Iterable[str]]


def resolve_host(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (blocking DNS: only for worker-side downloads)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_download_url(
    url: str, *, allow_private_hosts: bool, service: str = "download", resolver: Resolver = resolve_host
) -> None:
    """Refuse anything but http(s), and hosts resolving to private, loopback or link-local
    addresses unless the connection sets ``allow_private_hosts`` (e.g. the local simulator)."""

    def refuse(why: str) -> AvatarUnsafeURLError:
        return AvatarUnsafeURLError(
            f"refusing to download {redact_url(url)}: {why}", service=service, action="download"
        )

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise refuse("only http and https URLs are allowed")
    if not parts.hostname:
        raise refuse("the URL has no host")
    if allow_private_hosts:
        return
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = list(resolver(parts.hostname, port))
    except (OSError, ValueError) as exc:
        raise refuse(f"cannot resolve the host ({type(exc).__name__})") from None
    if not addresses:
        raise refuse("the host resolves to no address")
    private = [a for a in addresses if not is_public_address(a)]
    if private:
        raise refuse(
            f"the host resolves to a non-public address ({private[0]}); set allow_private_hosts in the "
            "service connection's extra to allow it"
        )
