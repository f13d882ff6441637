"""The service registry is the single source: every row reaches provider info, hooks, sensors,
operators, connection forms and the simulator, and per-action rate budgets come from it."""

from __future__ import annotations

import importlib
import inspect
import json
from typing import Any

import jinja2
import pytest
from airflow.providers.common.compat.sdk import BaseOperator

from airflow_provider_avatar.exceptions import AvatarInputError
from airflow_provider_avatar.get_provider_info import get_provider_info
from airflow_provider_avatar.services import PACKAGE, SERVICES, Service, hook_class
from airflow_provider_avatar.testing.simulator import SimState, _load_services

ROWS = list(SERVICES.values())


def _listed(section: str, row: Service) -> list[str]:
    return [m for e in get_provider_info()[section] if e["integration-name"] == row.name for m in e["python-modules"]]


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.key)
def test_every_row_reaches_provider_info(row: Service) -> None:
    info = get_provider_info()
    assert row.name in {i["integration-name"] for i in info["integrations"]}
    for kind in row.kinds:
        assert _listed(kind, row) == [f"{PACKAGE}.{kind}.{row.key}"]
    (conn,) = [c for c in info["connection-types"] if c["connection-type"] == row.key]
    assert conn["hook-class-name"] == row.hook_path
    behaviour = conn["ui-field-behaviour"]
    assert behaviour["placeholders"]["host"] == (row.default_base_url or row.form.placeholders["host"])
    assert behaviour["relabeling"] == dict(row.form.relabel)


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.key)
def test_hook_attributes_come_from_the_row(row: Service) -> None:
    cls = hook_class(row.key)
    assert (cls.conn_type, cls.hook_name, cls.default_conn_name, cls.conn_name_attr) == (
        row.key,
        row.name,
        f"{row.key}_default",
        f"{row.key}_conn_id",
    )
    # Airflow's "Test connection" builds the hook as ``cls(**{conn_name_attr: conn_id})``.
    hook = cls(**{cls.conn_name_attr: "my_conn"})
    assert hook.conn_id == getattr(hook, cls.conn_name_attr) == "my_conn"
    assert getattr(cls(), cls.conn_name_attr) == row.default_conn_id


def test_the_simulator_serves_every_row() -> None:
    services = _load_services(SimState(api_keys={}, url_ttl=60, clock=lambda: 0.0), 1.0)
    assert list(services) == list(SERVICES)
    assert all(sim.name == key for key, sim in services.items())


def _public_classes(row: Service) -> list[type[BaseOperator]]:
    classes = []
    for kind in ("sensors", "operators"):
        if kind in row.kinds:
            module = importlib.import_module(row.module(kind))
            classes += [
                c
                for _, c in inspect.getmembers(module, inspect.isclass)
                if issubclass(c, BaseOperator) and c.__module__ == module.__name__
            ]
    return classes


CLASSES = [(row, cls) for row in ROWS for cls in _public_classes(row)]


@pytest.mark.parametrize(("row", "cls"), CLASSES, ids=lambda v: getattr(v, "__name__", getattr(v, "key", "")))
def test_service_operators_take_a_templated_service_conn_id(row: Service, cls: type[BaseOperator]) -> None:
    """DAG authors template conn ids (``{{ var.value.env }}_scenext``): each sensor and operator takes
    ``<service>_conn_id``, keeps it under that name, and renders it."""
    param = row.conn_id_param
    signature = inspect.signature(cls.__init__)
    assert signature.parameters[param].default == row.default_conn_id
    assert param in cls.template_fields
    required = {
        name: "x"
        for name, p in signature.parameters.items()
        if p.kind is p.KEYWORD_ONLY and p.default is p.empty and name != param
    }
    op = cls(task_id="t", **required, **{param: "{{ params.conn }}"})
    op.render_template_fields({"params": {"conn": "rendered_conn"}}, jinja_env=jinja2.Environment())
    assert getattr(op, param) == "rendered_conn"
    hook_conn_id = getattr(op, "conn_id", None)
    if hook_conn_id is not None:  # sensors build their hook from conn_id
        assert hook_conn_id == "rendered_conn"


def test_json_fields_render_as_json() -> None:
    from airflow_provider_avatar.operators.zego import ZegoCreateDigitalHumanStreamOperator

    renderers = ZegoCreateDigitalHumanStreamOperator.template_fields_renderers
    assert set(renderers) <= set(ZegoCreateDigitalHumanStreamOperator.template_fields)
    assert {renderers[f] for f in ("layout", "video_config", "assets")} == {"json"}


# -- per-action rate budgets -----------------------------------------------------------------------
def _endpoint(monkeypatch: pytest.MonkeyPatch, service: str, **extra: Any) -> Any:
    login = "1234567890" if service == "zego" else None
    conn = {"conn_type": service, "host": "http://api.test", "login": login, "password": "k", "extra": extra}
    monkeypatch.setenv(f"AIRFLOW_CONN_{service.upper()}_DEFAULT", json.dumps(conn))
    hook = hook_class(service)()
    return hook._endpoint_for(hook.config)


def _spec(action: str) -> Any:
    from airflow_provider_avatar.protocols.base import RequestSpec

    return RequestSpec(action=action, method="GET", path="")


def test_zego_actions_each_have_their_own_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """ZEGO counts 10 requests/s per API: a burst of status reads must not delay a stop."""
    endpoint = _endpoint(monkeypatch, "zego")
    status, stop = (
        endpoint.limiter(_spec("GetDigitalHumanStreamTaskStatus")),
        endpoint.limiter(_spec("StopDigitalHumanStreamTask")),
    )
    assert status is not stop
    assert status is endpoint.limiter(_spec("GetDigitalHumanStreamTaskStatus"))
    assert status.interval == stop.interval > 0
    for _ in range(20):
        status.reserve(100.0)
    assert stop.reserve(100.0) == 0.0  # the stop's budget is untouched by 20 status reads


def test_other_services_share_one_budget_per_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint = _endpoint(monkeypatch, "scenext", max_qps=5)
    assert endpoint.limiter(_spec("get_status")) is endpoint.limiter(_spec("create_video"))


@pytest.mark.parametrize("value", [{"create_video": 0.5}, '{"create_video": 0.5}'])
def test_connection_can_give_an_action_its_own_rate(monkeypatch: pytest.MonkeyPatch, value: object) -> None:
    endpoint = _endpoint(monkeypatch, "scenext", max_qps=5, action_max_qps=value)
    create, status = endpoint.limiter(_spec("create_video")), endpoint.limiter(_spec("get_status"))
    assert create is not status
    assert create.interval > status.interval > 0
    assert create.reserve(0.0) == 0.0 and create.reserve(0.0) == pytest.approx(create.interval)
    assert status.reserve(0.0) == 0.0  # reads are not held back by the create budget


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not json", "must be a JSON object"),
        ([1, 2], "must map action names"),
        ({"create_video": "fast"}, "must be a number"),
        ({"create_video": 0}, "must be positive"),
        ({"create_video": None}, "has no rate"),
    ],
)
def test_bad_action_rates_are_a_clear_error(monkeypatch: pytest.MonkeyPatch, value: object, message: str) -> None:
    with pytest.raises(AvatarInputError, match=message):
        _endpoint(monkeypatch, "scenext", action_max_qps=value)


def test_the_download_operator_templates_its_conn_id() -> None:
    from airflow_provider_avatar.operators.download import AvatarVideoDownloadOperator

    op = AvatarVideoDownloadOperator(
        task_id="d", source="{{ params.s }}", destination="/v.mp4", conn_id="{{ params.c }}"
    )
    op.render_template_fields({"params": {"s": "u", "c": "rendered_conn"}}, jinja_env=jinja2.Environment())
    assert op.conn_id == "rendered_conn"
    assert AvatarVideoDownloadOperator.template_fields_renderers["source"] == "json"
