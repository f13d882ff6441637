"""Connection extras: their defaults, and the fields Airflow's connection form shows for them.

Pure data without Airflow imports: ``hooks.base`` reads a connection with these defaults and
``get_provider_info`` declares the form (``conn-fields``) from them, so the form shows what a hook does.

How Airflow 3's form treats a declared field: it shows the schema's ``default`` as the field's value and
writes every field into the connection's extra, so a field without a default would pre-fill the extra
with ``"name": null`` (and an enum holding ``null`` shows a literal "null"). Hence every field here has a
real default, and a rate limit is declared only for services that have one (for the others ``max_qps``
goes in the extra JSON). A field the user clears is saved as ``null``, which the hooks read as its default.
"""

from __future__ import annotations

from typing import Any, Final

DEFAULT_CONNECT_TIMEOUT: Final = 10.0
DEFAULT_READ_TIMEOUT: Final = 60.0
DEFAULT_MAX_ATTEMPTS: Final = 4
DEFAULT_SCHEME: Final = "https"
SCHEMES: Final = ("http", "https")
DEFAULT_ALLOW_PRIVATE_HOSTS: Final = False


def _field(label: str, description: str, type_: str, default: Any, **schema: Any) -> dict[str, Any]:
    # "null" stays an allowed type so a cleared field is valid (the UI marks non-nullable fields required).
    return {
        "label": label,
        "description": description,
        "schema": {"type": [type_, "null"], "default": default, **schema},
    }


def connection_fields(default_max_qps: float | None) -> dict[str, Any]:
    """The ``conn-fields`` of a connection type whose service allows ``default_max_qps`` requests/s (or None)."""
    fields: dict[str, Any] = {}
    if default_max_qps is not None:
        fields["max_qps"] = _field(
            "Max requests per second",
            "Client-side request rate limit shared by every task and trigger of this connection, per API "
            f"where the service counts each API apart (default {default_max_qps:g}, the service's documented limit).",
            "number",
            default_max_qps,
            minimum=0.1,
        )
    fields["allow_private_hosts"] = _field(
        "Allow private download hosts",
        "Allow downloads from private or loopback addresses (local simulator, on-premise storage).",
        "boolean",
        DEFAULT_ALLOW_PRIVATE_HOSTS,
    )
    fields["read_timeout"] = _field(
        "Read timeout (s)",
        f"Seconds to wait for an API answer (default {DEFAULT_READ_TIMEOUT:g}).",
        "number",
        DEFAULT_READ_TIMEOUT,
        minimum=1,
    )
    fields["connect_timeout"] = _field(
        "Connect timeout (s)",
        f"Seconds to wait for a connection to the API (default {DEFAULT_CONNECT_TIMEOUT:g}).",
        "number",
        DEFAULT_CONNECT_TIMEOUT,
        minimum=1,
    )
    fields["max_attempts"] = _field(
        "Attempts per call",
        f"Tries per API call for retryable errors (default {DEFAULT_MAX_ATTEMPTS}); a create is never repeated "
        "once it may have arrived.",
        "integer",
        DEFAULT_MAX_ATTEMPTS,
        minimum=1,
    )
    fields["scheme"] = _field(
        "Scheme",
        f"Used when the API base URL is a bare host name (default {DEFAULT_SCHEME}).",
        "string",
        DEFAULT_SCHEME,
        enum=list(SCHEMES),
    )
    return fields
