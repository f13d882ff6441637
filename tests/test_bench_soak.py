"""The soak benchmark's pure helpers: what its figures are computed from (no timing is asserted)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from benchmarks.soak import (
    GroupUsage,
    db_time,
    deferral_exits,
    delays,
    finish_times,
    fired_times,
    first_good_poll,
    summarize,
)

KEY = "TaskInstanceKey(dag_id='{dag}', task_id='{task}', run_id='soak', try_number={t}, map_index={i})"


def _event(state: str, dag: str, task: str, i: int, t: int = 1) -> str:
    key = KEY.format(dag=dag, task=task, t=t, i=i)
    return f"2026-11-30T12:53:40Z [info] Received executor event with state {state} for task instance {key}\n"


def test_deferral_exits_counts_only_success_events_of_the_named_task() -> None:
    text = "".join(
        [
            _event("success", "avatar_soak", "wait", 0),
            _event("success", "avatar_soak", "wait", 7, t=2),
            _event("failed", "avatar_soak", "wait", 3),  # not a deferral exit
            _event("success", "avatar_soak", "create", 5),  # another task
            _event("success", "other_dag", "wait", 9),  # another DAG
            "unrelated line\n",
        ]
    )
    assert deferral_exits(text, "avatar_soak", "wait") == [0, 7]


def test_deferral_exits_of_one_run_keep_every_try() -> None:
    """The e2e tests count a task's deferrals (one per try) and may ask about one run only."""
    other_run = _event("success", "avatar_soak", "wait", 4).replace("run_id='soak'", "run_id='other'")
    text = _event("success", "avatar_soak", "wait", 2) + other_run + _event("success", "avatar_soak", "wait", 2, t=2)
    assert deferral_exits(text, "avatar_soak", "wait") == [2, 4, 2]
    assert deferral_exits(text, "avatar_soak", "wait", run_id="soak") == [2, 2]


def _record(event: str, timestamp: str = "2026-11-30T12:54:31.054455Z") -> str:
    return json.dumps({"timestamp": timestamp, "level": "info", "event": event})


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ([_record("Trigger fired event")], [1796043271.054455]),
        (
            [_record("trigger x starting"), _record("Trigger fired event"), _record("trigger completed")],
            [1796043271.054455],
        ),
        # A trigger's own message that quotes the phrase is not the triggerer's record.
        ([_record("poll said 'Trigger fired event'")], []),
        (["Trigger fired event but not JSON"], []),
        ([json.dumps({"event": "Trigger fired event"})], []),
        ([], []),
    ],
)
def test_fired_times_reads_the_triggerers_json_records(lines: list[str], expected: list[float]) -> None:
    assert fired_times(lines) == pytest.approx(expected)


@pytest.mark.parametrize(
    "stored",
    ["2026-11-30 12:54:31.054455", "2026-11-30 12:54:31.054455+00:00", "2026-11-30T12:54:31.054455"],
)
def test_db_time_reads_sqlite_utc_datetimes(stored: str) -> None:
    assert db_time(stored) == pytest.approx(1796043271.054455)


def test_finish_times_fall_in_the_window_and_repeat_with_the_seed() -> None:
    ids = [str(i) for i in range(10001, 10201)]
    first = finish_times(ids, 1000.0, (10.0, 60.0), seed=1)
    assert sorted(first) == sorted(ids)
    assert all(1010.0 <= at <= 1060.0 for at in first.values())
    assert finish_times(ids, 1000.0, (10.0, 60.0), seed=1) == first
    assert finish_times(ids, 1000.0, (10.0, 60.0), seed=2) != first


def test_delays_pair_each_finish_with_its_own_observation() -> None:
    finished = {"a": 100.0, "b": 200.0, "c": 300.0}
    observed = {"a": 101.5, "b": 203.0, "z": 5.0}  # c never observed, z never released
    assert sorted(delays(finished, observed)) == [1.5, 3.0]


def test_first_good_poll_skips_early_faulted_and_failed_reads() -> None:
    finished = {"a": 100.0, "b": 100.0}
    reads = [
        ("a", 99.0, 200, None),  # before the finish: still running
        ("a", 101.0, 503, "503"),  # faulted
        ("a", 102.0, 200, "429"),  # faulted (a fault's status is what the fault says)
        ("a", 104.0, 200, None),
        ("a", 103.0, 200, None),  # out of order: the earliest counts
        ("b", 100.0, 200, None),  # at the finish counts
        ("x", 150.0, 200, None),  # not released
    ]
    assert first_good_poll(reads, finished) == {"a": 103.0, "b": 100.0}


def test_group_usage_keeps_exited_processes_cpu_and_the_peak_sum_of_rss() -> None:
    usage = GroupUsage()
    usage.add({1: (1.0, 100.0), 2: (0.5, 50.0)})
    usage.add({1: (2.0, 120.0), 2: (1.5, 200.0)})
    usage.add({1: (3.0, 110.0)})  # 2 exited: its 1.5 s stay counted
    assert usage.cpu_seconds == pytest.approx(4.5)
    assert usage.first_rss == 150.0
    assert usage.peak_rss == 320.0
    assert usage.samples == 3


def test_summarize_gives_percentiles_and_nan_for_nothing() -> None:
    figures = summarize([float(i) for i in range(1, 101)])
    assert figures["p50"] == pytest.approx(50.5)
    assert figures["p95"] == pytest.approx(95.05)
    assert figures["max"] == 100.0
    assert all(math.isnan(v) for v in summarize([]).values())


def test_soak_dag_maps_a_deferrable_wait_over_n_creates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.dag_processing.dagbag import DagBag

    from benchmarks.soak import DAG_FILE, DAG_ID

    monkeypatch.setenv("AVATAR_SOAK_N", "3")
    shutil.copy(DAG_FILE, tmp_path)
    bag = DagBag(dag_folder=str(tmp_path))
    assert bag.import_errors == {}
    dag = bag.dags[DAG_ID]
    create, wait = dag.get_task("create"), dag.get_task("wait")
    assert create.expand_input.value == {"question": ["soak item 0", "soak item 1", "soak item 2"]}
    assert wait.partial_kwargs["deferrable"] is True
    assert wait.upstream_task_ids == {"create"}
