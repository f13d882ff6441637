#!/usr/bin/env bash
# Resolve one lock file: constraints/airflow-<AIRFLOW>-py<PYTHON>[-bench].txt (see constraints/README.md).
# The existing file is uv's preference, so re-running changes only what must change; UPGRADE=1 takes the newest.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$1
[[ $out =~ ^constraints/airflow-([0-9][0-9.a-z]*)-py(3\.[0-9]+)(-bench)?\.txt$ ]] ||
    { echo "compile.sh: not a lock name: $out (constraints/airflow-<version>-py<python>[-bench].txt)" >&2; exit 2; }
airflow=${BASH_REMATCH[1]} python=${BASH_REMATCH[2]} bench=${BASH_REMATCH[3]}
pins=constraints/airflow-$airflow.in
# An Airflow version's pin file: the exact version, plus any dependency it is known to break with (and why).
[[ -f $pins ]] || printf '# Resolved with pyproject.toml for every lock of this Airflow version. Add a pin here, with its\n# reason, when a newer dependency breaks this Airflow release.\napache-airflow==%s\n' "$airflow" >"$pins"
args=(--extra dev -c "$pins")
# The bench lock adds the bench extra on top of the test lock, so the shared packages stay the same.
[[ -n $bench ]] && args+=(--extra bench -c "constraints/airflow-$airflow-py$python.txt")
"${UV:-uv}" pip compile pyproject.toml "${args[@]}" --universal --python-version "$python" \
    --custom-compile-command "make lock" --quiet ${UPGRADE:+--upgrade} -o "$out"
echo "locked $out"
