"""A second, differently written correct answer to ex3: the registry read as protobuf.

Written from the README and the stub's docstrings alone, to prove the suites judge values and
not one way of computing them (tests/test_alt_solutions.py grades it and wants full marks).
Instead of `FeatureStore.list_feature_views()` it parses the registry file named by
`feature_store.yaml` with Feast's protobuf classes, takes the newest event with
`pyarrow.compute.max`, and parses the command line with `getopt`.
"""

from __future__ import annotations

import getopt
import math
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

COLUMNS = [
    "feature_view",
    "ttl_seconds",
    "latest_event_timestamp",
    "materialized_until",
    "data_age_seconds",
    "materialization_lag_seconds",
    "status",
]


def check_freshness(repo_path, *, now=None, max_materialization_lag=None) -> pd.DataFrame:
    """Report how fresh every feature view of the Feast repo at `repo_path` is."""
    repo = Path(repo_path)
    config_file = repo / "feature_store.yaml"
    if not config_file.is_file():
        raise FileNotFoundError(f"{repo}: not a Feast repo (no feature_store.yaml)")
    at = _instant(datetime.now(UTC) if now is None else now)
    lag_limit = max_materialization_lag
    if lag_limit is not None:
        if not isinstance(lag_limit, timedelta):
            raise TypeError("max_materialization_lag must be a timedelta or None")
        if lag_limit < timedelta(0):
            raise ValueError("max_materialization_lag cannot be negative")

    import yaml
    from feast.protos.feast.core.Registry_pb2 import Registry

    config = yaml.safe_load(config_file.read_text()) or {}
    registry_setting = config.get("registry", "data/registry.db")
    if isinstance(registry_setting, dict):
        registry_setting = registry_setting.get("path", "data/registry.db")
    registry_file = _resolve(repo, str(registry_setting))
    registry = Registry.FromString(registry_file.read_bytes())
    project = config.get("project")

    out = []
    for proto in registry.feature_views:
        spec, meta = proto.spec, proto.meta
        if project is not None and spec.project != project:
            continue
        ttl = spec.ttl.seconds + spec.ttl.nanos / 1e9
        newest = _newest(repo, spec.batch_source)
        ends = [i.end_time.ToNanoseconds() for i in meta.materialization_intervals]
        until = pd.Timestamp(max(ends), unit="ns", tz="UTC") if ends else pd.NaT
        age = (at - newest).total_seconds() if newest is not pd.NaT else math.nan
        lag = math.nan
        if newest is not pd.NaT and until is not pd.NaT:
            lag = max((newest - until).total_seconds(), 0.0)
        if ttl > 0 and age > ttl:
            status = "stale"
        elif spec.online and not ends:
            status = "not_materialized"
        elif lag_limit is not None and not math.isnan(lag) and lag > lag_limit.total_seconds():
            status = "lagging"
        elif ttl == 0:
            status = "no_ttl"
        else:
            status = "fresh"
        out.append([spec.name, float(ttl), newest, until, age, lag, status])
    frame = pd.DataFrame(out, columns=COLUMNS)
    for column in ("latest_event_timestamp", "materialized_until"):
        frame[column] = pd.to_datetime(frame[column], utc=True).dt.as_unit("ns")
    for column in ("ttl_seconds", "data_age_seconds", "materialization_lag_seconds"):
        frame[column] = frame[column].astype("float64")
    return frame.sort_values("feature_view").reset_index(drop=True)


def format_alerts(report: pd.DataFrame) -> list[str]:
    """One alert line per view of `report` whose status is not `fresh`."""
    lines = []
    for record in report.to_dict("records"):
        if record["status"] == "fresh":
            continue
        facts = [
            f"data age {_seconds(record['data_age_seconds'])}",
            f"newest event {record['latest_event_timestamp']}",
        ]
        if record["status"] == "stale":
            facts.append(f"ttl {_seconds(record['ttl_seconds'])}")
        if record["status"] == "lagging":
            facts.append(f"lag {_seconds(record['materialization_lag_seconds'])}")
            facts.append(f"materialized until {record['materialized_until']}")
        if record["status"] == "not_materialized":
            facts.append("never materialized")
        if record["status"] == "no_ttl":
            facts.append("ttl 0 (never expires)")
        lines.append(f"{record['feature_view']}: {record['status']}: " + ", ".join(facts))
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: print the freshness table of a repo and its alerts; return the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        options, rest = getopt.getopt(args, "", ["repo=", "now=", "max-lag=", "help"])
        if rest:
            raise ValueError(f"unexpected argument {rest[0]!r}")
        given = dict(options)
        if "--help" in given:
            print("usage: freshness.py [--repo PATH] [--now ISO] [--max-lag SECONDS]")
            return 0
        now = _instant(given["--now"]) if "--now" in given else None
        lag = None
        if "--max-lag" in given:
            seconds = float(given["--max-lag"])
            if not math.isfinite(seconds) or seconds < 0:
                raise ValueError(f"--max-lag must be seconds >= 0, not {given['--max-lag']}")
            lag = timedelta(seconds=seconds)
        report = check_freshness(given.get("--repo", "."), now=now, max_materialization_lag=lag)
    except Exception as exc:  # noqa: BLE001 - any bad input: one line, exit 2
        first = (str(exc) or type(exc).__name__).splitlines()[0]
        print(f"freshness: error: {first}", file=sys.stderr)
        return 2
    print(report.to_string(index=False))
    alerts = format_alerts(report)
    for line in alerts:
        print(line)
    return 1 if alerts else 0


def _instant(value) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    if stamp is pd.NaT:
        raise ValueError("now is not a time")
    return (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")).as_unit(
        "ns"
    )


def _resolve(repo: Path, path: str) -> Path:
    path = path.removeprefix("file://")
    return Path(path) if Path(path).is_absolute() else repo / path


def _newest(repo: Path, source) -> pd.Timestamp:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    uri = source.file_options.uri
    if not uri:
        return pd.NaT
    file = _resolve(repo, uri)
    if not file.exists():
        raise FileNotFoundError(f"the source of {source.name} is missing: {file}")
    column = pq.read_table(file, columns=[source.timestamp_field]).column(0)
    top = pc.max(column).as_py()
    if top is None:
        return pd.NaT
    return _instant(top)


def _seconds(value: float) -> str:
    return "unknown" if value is None or math.isnan(value) else f"{value:.0f} s"


if __name__ == "__main__":
    raise SystemExit(main())
