"""Every ```python block of the README runs as written: pasted into a DAG file, it builds its DAG."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import REPO

README = REPO / "README.md"
_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def _python_blocks() -> list[tuple[int, str]]:
    """(line number, code) of each ```python block in the README."""
    text = README.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in _BLOCK.finditer(text)]


BLOCKS = _python_blocks()


def test_the_readme_has_python_blocks() -> None:
    assert len(BLOCKS) >= 2  # the Scenext and ZEGO quick starts; guards the parser


@pytest.mark.parametrize(("line", "code"), BLOCKS, ids=[f"README.md:{line}" for line, _ in BLOCKS])
def test_python_block_builds_its_dag(line: int, code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.dag_processing.dagbag import DagBag

    from airflow_provider_avatar.operators.download import AvatarVideoDownloadOperator

    # Like a newcomer: the block alone in a new DAG file, run from an unrelated directory.
    dag_file = tmp_path / f"readme_line_{line}.py"
    dag_file.write_text(code, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    bag = DagBag(dag_folder=str(dag_file))

    assert bag.import_errors == {}, f"README.md line {line}: {bag.import_errors}"
    assert bag.dags, f"README.md line {line} builds no DAG"
    for dag in bag.dags.values():
        assert dag.tasks, f"README.md line {line}: DAG {dag.dag_id} has no tasks"
        for task in dag.tasks:
            if isinstance(task, AvatarVideoDownloadOperator):
                # An object store needs its provider installed; the quick start must work without one.
                assert task.destination.startswith("/"), f"README.md line {line}: {task.destination!r} is not local"
