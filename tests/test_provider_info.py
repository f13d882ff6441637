"""A malformed provider dict breaks ``import airflow`` everywhere: validate it like Airflow does."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from importlib.metadata import entry_points
from importlib.resources import files

import jsonschema

from airflow_provider_avatar.get_provider_info import get_provider_info


def test_provider_info_matches_airflows_schema() -> None:
    schema = json.loads((files("airflow") / "provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_entry_point_and_package_name() -> None:
    (ep,) = [e for e in entry_points(group="apache_airflow_provider") if e.value.startswith("airflow_provider_avatar")]
    info = ep.load()()
    assert info["package-name"] == "airflow-provider-avatar"


def test_every_listed_module_and_hook_imports() -> None:
    info = get_provider_info()
    for section in ("hooks", "operators", "sensors", "triggers"):
        for entry in info[section]:
            for module in entry["python-modules"]:
                importlib.import_module(module)
    for conn in info["connection-types"]:
        module, _, name = conn["hook-class-name"].rpartition(".")
        hook = getattr(importlib.import_module(module), name)
        assert hook.conn_type == conn["connection-type"]
        assert {"password", "host"} <= set(conn["ui-field-behaviour"]["relabeling"])


def test_providers_manager_sees_hook_and_connection_form() -> None:
    code = (
        "import json; from airflow.providers_manager import ProvidersManager as P; p = P();"
        "h = p.hooks['scenext']; print(json.dumps({'hook': h.hook_class_name,"
        "'conn_id_attr': h.connection_id_attribute_name,"
        "'providers': sorted(p.providers), 'behaviour': p.field_behaviours.get('scenext'),"
        "'widgets': sorted(k for k in p.connection_form_widgets if k.startswith('extra__scenext__'))}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    data = json.loads(out.stdout.strip().splitlines()[-1])
    assert data["hook"] == "airflow_provider_avatar.hooks.scenext.ScenextHook"
    assert data["conn_id_attr"] == "scenext_conn_id"
    assert "airflow-provider-avatar" in data["providers"]
    assert data["behaviour"]["relabeling"]["password"] == "API Key"
    assert "extra__scenext__read_timeout" in data["widgets"]


def test_provider_info_does_not_import_airflow() -> None:
    """Airflow calls it while importing itself: importing Airflow from it is a circular import."""
    code = (
        "import sys; from airflow_provider_avatar.get_provider_info import get_provider_info; get_provider_info();"
        "print(sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"
    # importing a protocol first (it imports Airflow, which reads the provider info) must work
    for module in ("airflow_provider_avatar.protocols.scenext", "airflow_provider_avatar.protocols.zego"):
        subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, timeout=120, check=True)
