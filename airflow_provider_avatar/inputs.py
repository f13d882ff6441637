"""Checks of values a user types into an operator or sensor, each naming the parameter.

Pure functions (no I/O, no Airflow): they raise ``ValueError`` with a message that starts with
the parameter's name as the user wrote it; :func:`checking` turns that into an
:class:`~airflow_provider_avatar.exceptions.AvatarInputError` carrying service and action.
Which parameter is checked when (DAG parse or run) is in docs/architecture.md, "Bad input".
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from airflow_provider_avatar.exceptions import AvatarInputError


@contextmanager
def checking(service: str, action: str, remote_task_id: str | None = None) -> Iterator[None]:
    """Raise a ``ValueError`` from the block as ``AvatarInputError`` (an input error passes as it is)."""
    try:
        yield
    except AvatarInputError:
        raise
    except ValueError as exc:
        raise AvatarInputError(str(exc), service=service, action=action, remote_task_id=remote_task_id) from None


def flag(name: str, value: Any) -> bool:
    """A true/false switch: ``"no"`` or ``1`` is refused, not read as truthy."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False; got {value!r}")
    return value


def number(name: str, value: Any, *, minimum: float | None = None, positive: bool = False) -> float:
    """A finite number (not a bool, not text), at least ``minimum`` or, with ``positive``, above 0."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a number; got {value!r}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be greater than 0; got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be {minimum:g} or more; got {value!r}")
    return float(value)


def whole(name: str, value: Any, *, positive: bool = False) -> int:
    """A whole number (an ``int``, not a bool), above 0 with ``positive``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be a whole number; got {value!r}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be greater than 0; got {value!r}")
    return value


def text(name: str, value: Any) -> str:
    """Non-empty text, stripped; a template that rendered empty is refused here."""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be text; got {type(value).__name__} {value!r}")
    if not value.strip():
        raise ValueError(f"{name} is empty{' (a template rendered nothing?)' if not value else ''}; give a value")
    return value.strip()


def optional_text(name: str, value: Any) -> str | None:
    """``None`` (not given), else as :func:`text`: a value given, or rendered, empty is refused."""
    return None if value is None else text(name, value)


def text_list(name: str, value: Any) -> list[str]:
    """A list of non-empty strings; a single string (a template rendered as text) is refused, not split."""
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise ValueError(f"{name} must be a list of strings; got {type(value).__name__} {str(value)[:60]!r}")
    if any(not isinstance(item, str) or not item.strip() for item in value):
        raise ValueError(f"{name} must hold non-empty strings (URLs or base64)")
    return list(value)


def mapping(name: str, value: Any) -> Mapping[str, Any]:
    """A JSON object (dict); text, such as a template rendered without native objects, is refused."""
    if not isinstance(value, Mapping):
        hint = " (render templates as native objects, or pass a dict)" if isinstance(value, str) else ""
        raise ValueError(f"{name} must be an object (dict); got {type(value).__name__} {str(value)[:60]!r}{hint}")
    return value
