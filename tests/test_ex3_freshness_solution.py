"""The reference solution of ex3_freshness keeps the contract in its docstrings.

The tests build Feast repos in known states (views fresh, stale, exactly at their TTL, never
materialized, lagging, without TTL, offline-only, with a relative source path) once per module,
because importing Feast and materializing take seconds.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

SLUG = "ex3_freshness"
NOW = pd.Timestamp("2024-04-01", tz="UTC")
D = pd.Timedelta(days=1)
H = pd.Timedelta(hours=1)
COLUMNS = [
    "feature_view",
    "ttl_seconds",
    "latest_event_timestamp",
    "materialized_until",
    "data_age_seconds",
    "materialization_lag_seconds",
    "status",
]
FEATURE_STORE_YAML = """\
project: freshness_lab
provider: local
registry: data/registry.db
online_store:
  type: sqlite
  path: data/online_store.db
offline_store:
  type: duckdb
entity_key_serialization_version: 3
"""

# name: (ttl, newest event, online, materialization windows, source options)
VIEWS = {
    "fresh_view": (7 * D, NOW - D, True, [(NOW - 30 * D, NOW)], {}),
    "stale_view": (D, NOW - 2 * D, True, [(NOW - 30 * D, NOW - 3 * D)], {}),
    "edge_view": (D, NOW - D, True, [(NOW - 30 * D, NOW - D)], {}),
    "never_view": (7 * D, NOW - D, True, [], {"tz": "Asia/Tokyo"}),
    "never_stale_view": (D, NOW - 3 * D, True, [], {}),
    "lagging_view": (
        7 * D,
        NOW - D,
        True,
        [(NOW - 30 * D, NOW - 5 * D), (NOW - 5 * D, NOW - D - 6 * H)],
        {},
    ),
    "no_ttl_view": (pd.Timedelta(0), NOW - 400 * D, True, [(NOW - 500 * D, NOW - 400 * D)], {}),
    "no_ttl_lagging_view": (pd.Timedelta(0), NOW - D, True, [(NOW - 30 * D, NOW - D - 6 * H)], {}),
    "offline_view": (7 * D, NOW - D, False, [], {"timestamp_field": "ts"}),
    "offline_stale_view": (D, NOW - 3 * D, False, [], {}),
    "relative_view": (7 * D, NOW - 2 * D, False, [], {"relative": True, "tz": None}),
}
STATUS_AT_NOW = {
    "edge_view": "fresh",
    "fresh_view": "fresh",
    "lagging_view": "fresh",
    "never_stale_view": "stale",
    "never_view": "not_materialized",
    "no_ttl_lagging_view": "no_ttl",
    "no_ttl_view": "no_ttl",
    "offline_stale_view": "stale",
    "offline_view": "fresh",
    "relative_view": "fresh",
    "stale_view": "stale",
}


def write_source(path: Path, newest: pd.Timestamp, column: str, tz: str | None) -> None:
    """Three days of rows for users 1 and 2, the newest at `newest`, written in `tz`."""
    stamps = pd.Series([newest - 2 * D, newest - D, newest, newest - D]).dt.tz_convert("UTC")
    stamps = stamps.dt.tz_localize(None) if tz is None else stamps.dt.tz_convert(tz)
    frame = pd.DataFrame({"user_id": [1, 1, 1, 2], column: stamps, "spend": [1.0, 2, 3, 4]})
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)


@pytest.fixture(scope="module")
def fs(solution):
    return solution(SLUG)


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """A Feast repo holding every view of VIEWS, each materialized over its windows."""
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64

    root = tmp_path_factory.mktemp("freshness_repo")
    (root / "feature_store.yaml").write_text(FEATURE_STORE_YAML)
    user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64)
    views = []
    for name, (ttl, newest, online, _windows, opts) in VIEWS.items():
        column = opts.get("timestamp_field", "event_timestamp")
        relative = f"data/{name}.parquet"
        write_source(root / relative, newest, column, opts.get("tz", "UTC"))
        source = FileSource(
            name=f"{name}_source",
            # Relative paths are read from the cwd by duckdb: only for never-materialized views.
            path=relative if opts.get("relative") else str(root / relative),
            timestamp_field=column,
        )
        views.append(
            FeatureView(
                name=name,
                entities=[user],
                ttl=ttl.to_pytimedelta(),
                schema=[Field(name="spend", dtype=Float64)],
                source=source,
                online=online,
            )
        )
    store = FeatureStore(repo_path=str(root))
    store.apply([user, *views])
    for name, (_ttl, _newest, _online, windows, _opts) in VIEWS.items():
        for start, end in windows:
            store.materialize(start.to_pydatetime(), end.to_pydatetime(), feature_views=[name])
    return root


@pytest.fixture(scope="module")
def empty_repo(tmp_path_factory) -> Path:
    """A Feast repo whose registry holds an entity and no feature view."""
    from feast import Entity, FeatureStore, ValueType

    root = tmp_path_factory.mktemp("empty_repo")
    (root / "feature_store.yaml").write_text(FEATURE_STORE_YAML)
    FeatureStore(repo_path=str(root)).apply(
        [Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64)]
    )
    return root


def expected_report(max_lag: pd.Timedelta | None = None) -> pd.DataFrame:
    rows = []
    for name in sorted(VIEWS):
        ttl, newest, _online, windows, _opts = VIEWS[name]
        until = max((end for _start, end in windows), default=pd.NaT)
        lag = max(newest - until, pd.Timedelta(0)) if windows else pd.NaT
        rows.append(
            {
                "feature_view": name,
                "ttl_seconds": ttl.total_seconds(),
                "latest_event_timestamp": newest,
                "materialized_until": until,
                "data_age_seconds": (NOW - newest).total_seconds(),
                "materialization_lag_seconds": lag.total_seconds(),
                "status": STATUS_AT_NOW[name],
            }
        )
    frame = pd.DataFrame(rows, columns=COLUMNS)
    for column in ("latest_event_timestamp", "materialized_until"):
        frame[column] = pd.to_datetime(frame[column], utc=True).dt.as_unit("ns")
    return frame


def statuses(report: pd.DataFrame) -> dict[str, str]:
    return dict(zip(report["feature_view"], report["status"], strict=True))


# -- check_freshness -----------------------------------------------------------------------------


def test_report_has_one_row_per_view_sorted_with_the_exact_columns(fs, repo):
    report = fs.check_freshness(repo, now=NOW)
    assert list(report.columns) == COLUMNS
    assert report["feature_view"].tolist() == sorted(VIEWS)
    assert report.index.tolist() == list(range(len(VIEWS)))


def test_report_values_and_dtypes_at_a_given_now(fs, repo):
    report = fs.check_freshness(repo, now=NOW)
    pd.testing.assert_frame_equal(report, expected_report())
    assert str(report["latest_event_timestamp"].dtype) == "datetime64[ns, UTC]"
    assert report["ttl_seconds"].dtype == "float64"


def test_views_never_materialized_have_missing_end_and_lag(fs, repo):
    report = fs.check_freshness(repo, now=NOW).set_index("feature_view")
    for name in ("never_view", "offline_view", "relative_view"):
        assert pd.isna(report.loc[name, "materialized_until"])
        assert pd.isna(report.loc[name, "materialization_lag_seconds"])
    assert report.loc["never_view", "status"] == "not_materialized"


def test_an_offline_view_is_not_flagged_for_never_being_materialized(fs, repo):
    got = statuses(fs.check_freshness(repo, now=NOW))
    assert got["offline_view"] == "fresh"
    assert got["offline_stale_view"] == "stale"


def test_stale_wins_over_not_materialized_and_lagging(fs, repo):
    got = statuses(fs.check_freshness(repo, now=NOW, max_materialization_lag=timedelta(hours=1)))
    assert got["never_stale_view"] == "stale"
    assert got["stale_view"] == "stale"


def test_materializing_past_the_newest_event_is_zero_lag(fs, repo):
    report = fs.check_freshness(repo, now=NOW).set_index("feature_view")
    assert report.loc["fresh_view", "materialized_until"] == NOW
    assert report.loc["fresh_view", "materialization_lag_seconds"] == 0.0


def test_materialized_until_is_the_latest_end_of_several_windows(fs, repo):
    report = fs.check_freshness(repo, now=NOW).set_index("feature_view")
    assert report.loc["lagging_view", "materialized_until"] == NOW - D - 6 * H
    assert report.loc["lagging_view", "materialization_lag_seconds"] == 6 * 3600.0


@pytest.mark.parametrize(
    ("max_lag", "changed"),
    [
        (None, {}),
        (timedelta(hours=1), {"lagging_view": "lagging", "no_ttl_lagging_view": "lagging"}),
        (
            timedelta(hours=5, minutes=59),
            {"lagging_view": "lagging", "no_ttl_lagging_view": "lagging"},
        ),
        (timedelta(hours=6), {}),  # a lag equal to the maximum is allowed
        (timedelta(days=30), {}),
    ],
)
def test_lagging_depends_on_the_max_lag(fs, repo, max_lag, changed):
    got = statuses(fs.check_freshness(repo, now=NOW, max_materialization_lag=max_lag))
    assert got == {**STATUS_AT_NOW, **changed}


def test_data_exactly_ttl_old_is_fresh_and_one_second_more_is_stale(fs, repo):
    at_ttl = statuses(fs.check_freshness(repo, now=NOW))
    assert at_ttl["edge_view"] == "fresh"
    past = fs.check_freshness(repo, now=NOW + pd.Timedelta(seconds=1)).set_index("feature_view")
    assert past.loc["edge_view", "status"] == "stale"
    assert past.loc["edge_view", "data_age_seconds"] == 86401.0


def test_a_view_without_ttl_is_never_stale(fs, repo):
    report = fs.check_freshness(repo, now=NOW + 1000 * D).set_index("feature_view")
    assert report.loc["no_ttl_view", "status"] == "no_ttl"
    assert report.loc["no_ttl_view", "ttl_seconds"] == 0.0
    assert report.loc["fresh_view", "status"] == "stale"


@pytest.mark.parametrize(
    "now",
    [
        datetime(2024, 4, 1),  # naive means UTC
        datetime(2024, 4, 1, tzinfo=UTC),
        pd.Timestamp("2024-04-01 09:00", tz="Asia/Tokyo"),
        "2024-04-01T02:00:00+02:00",
        "2024-04-01",
    ],
)
def test_now_in_any_form_means_the_same_instant(fs, repo, now):
    pd.testing.assert_frame_equal(fs.check_freshness(repo, now=now), expected_report())


def test_now_defaults_to_the_wall_clock(fs, repo):
    before = pd.Timestamp.now(tz="UTC")
    report = fs.check_freshness(repo)
    after = pd.Timestamp.now(tz="UTC")
    ages = report["data_age_seconds"]
    low = (before - report["latest_event_timestamp"]).dt.total_seconds()
    high = (after - report["latest_event_timestamp"]).dt.total_seconds()
    assert ((low <= ages) & (ages <= high)).all()
    assert statuses(report)["fresh_view"] == "stale"  # 2024 data is old by now


def test_a_relative_source_path_is_relative_to_the_repo_not_the_cwd(
    fs, repo, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    report = fs.check_freshness(str(repo), now=NOW).set_index("feature_view")
    # The source was written with naive timestamps: read as UTC.
    assert report.loc["relative_view", "latest_event_timestamp"] == NOW - 2 * D
    assert report.loc["relative_view", "data_age_seconds"] == 2 * 86400.0


def test_the_reference_repo_is_fresh_two_days_after_its_last_row(fs, lab):
    report = fs.check_freshness(lab.feature_repo, now="2024-04-01T00:00:00Z")
    assert report["feature_view"].tolist() == ["user_activity"]
    row = report.iloc[0]
    assert row["status"] == "fresh"
    assert row["ttl_seconds"] == 7 * 86400.0
    assert row["latest_event_timestamp"] == pd.Timestamp("2024-03-30", tz="UTC")
    assert row["materialization_lag_seconds"] == 0.0


def test_an_empty_registry_gives_an_empty_report(fs, empty_repo):
    report = fs.check_freshness(empty_repo, now=NOW)
    assert list(report.columns) == COLUMNS and len(report) == 0


def test_a_missing_repo_folder_raises_file_not_found(fs, tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        fs.check_freshness(tmp_path / "nowhere")


def test_a_folder_without_feature_store_yaml_raises_file_not_found(fs, tmp_path):
    with pytest.raises(FileNotFoundError, match="feature_store.yaml"):
        fs.check_freshness(tmp_path)


def test_a_negative_max_lag_raises_value_error(fs, repo):
    with pytest.raises(ValueError, match="max_materialization_lag"):
        fs.check_freshness(repo, now=NOW, max_materialization_lag=timedelta(seconds=-1))


def test_a_max_lag_that_is_not_a_timedelta_raises_type_error(fs, repo):
    with pytest.raises(TypeError, match="max_materialization_lag"):
        fs.check_freshness(repo, now=NOW, max_materialization_lag=3600)


@pytest.mark.parametrize("now", ["yesterday", "NaT", "2024-13-01"])
def test_an_unreadable_now_raises_value_error(fs, repo, now):
    with pytest.raises(ValueError, match="now"):
        fs.check_freshness(repo, now=now)


# -- format_alerts -------------------------------------------------------------------------------


def test_one_alert_per_view_that_is_not_fresh_in_report_order(fs, repo):
    report = fs.check_freshness(repo, now=NOW, max_materialization_lag=timedelta(hours=1))
    alerts = fs.format_alerts(report)
    flagged = report[report["status"] != "fresh"]
    assert len(alerts) == len(flagged) == 7
    expected = zip(flagged["feature_view"], flagged["status"], strict=True)
    for line, (name, status) in zip(alerts, expected, strict=True):
        assert line.startswith(f"{name}: {status}: ")
        assert "\n" not in line


def test_alerts_give_the_numbers_behind_the_status(fs, repo):
    report = fs.check_freshness(repo, now=NOW, max_materialization_lag=timedelta(hours=1))
    alerts = {line.split(":")[0]: line for line in fs.format_alerts(report)}
    assert "172800 s" in alerts["stale_view"] and "86400 s" in alerts["stale_view"]
    assert "21600 s" in alerts["lagging_view"]
    assert "2024-03-30T18:00:00+00:00" in alerts["lagging_view"]
    assert "34560000 s" in alerts["no_ttl_view"]
    assert "never materialized" in alerts["never_view"]


def test_no_alerts_for_an_all_fresh_or_empty_report(fs):
    fresh = pd.DataFrame(
        {
            "feature_view": ["a"],
            "ttl_seconds": [60.0],
            "latest_event_timestamp": [NOW],
            "materialized_until": [NOW],
            "data_age_seconds": [1.0],
            "materialization_lag_seconds": [0.0],
            "status": ["fresh"],
        }
    )
    assert fs.format_alerts(fresh) == []
    assert fs.format_alerts(fresh.iloc[:0]) == []


def test_missing_numbers_are_written_as_none(fs):
    report = pd.DataFrame(
        {
            "feature_view": ["v"],
            "ttl_seconds": [60.0],
            "latest_event_timestamp": [pd.NaT],
            "materialized_until": [pd.NaT],
            "data_age_seconds": [float("nan")],
            "materialization_lag_seconds": [float("nan")],
            "status": ["not_materialized"],
        }
    )
    (line,) = fs.format_alerts(report)
    assert line.startswith("v: not_materialized: ") and "none" in line and "nan" not in line


# -- main ----------------------------------------------------------------------------------------


def test_main_prints_the_table_and_alerts_and_exits_1(fs, repo, capsys):
    code = fs.main(["--repo", str(repo), "--now", "2024-04-01T00:00:00Z", "--max-lag", "3600"])
    out = capsys.readouterr().out
    assert code == 1
    assert "feature_view" in out and "materialization_lag_seconds" in out
    for name in VIEWS:
        assert name in out
    assert "lagging_view: lagging: " in out and "never_view: not_materialized: " in out


def test_main_exits_0_when_every_view_is_fresh(fs, lab, capsys):
    assert fs.main(["--repo", str(lab.feature_repo), "--now", "2024-04-01"]) == 0
    assert "user_activity" in capsys.readouterr().out


def test_main_exits_1_when_the_reference_repo_goes_stale(fs, lab, capsys):
    assert fs.main(["--repo", str(lab.feature_repo), "--now", "2024-04-10T00:00:00"]) == 1
    assert "user_activity: stale: " in capsys.readouterr().out


def test_main_exits_0_for_a_repo_without_views(fs, empty_repo, capsys):
    assert fs.main(["--repo", str(empty_repo), "--now", "2024-04-01"]) == 0


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--repo", "{missing}"], "no feature repo"),
        (["--repo", "{tmp}"], "feature_store.yaml"),
        (["--repo", "{repo}", "--now", "next tuesday"], "--now"),
        (["--repo", "{repo}", "--max-lag", "-5"], "--max-lag"),
        (["--repo", "{repo}", "--max-lag", "soon"], "--max-lag"),
        (["--repo", "{repo}", "--max-lag", "nan"], "--max-lag"),
    ],
)
def test_main_exits_2_on_bad_input_with_one_line_and_no_traceback(
    fs, repo, tmp_path, capsys, args, reason
):
    paths = {"missing": tmp_path / "missing", "tmp": tmp_path, "repo": repo}
    argv = [arg.format(**paths) for arg in args]
    assert fs.main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("freshness: error: ") and reason in lines[0]
    assert "Traceback" not in captured.err + captured.out


def test_main_help_exits_0(fs, capsys):
    assert fs.main(["--help"]) == 0
    assert "--max-lag" in capsys.readouterr().out


def test_the_script_exits_2_without_a_traceback_on_a_missing_repo(kit_root, tmp_path):
    script = kit_root / "solutions" / SLUG / "freshness.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--repo", str(tmp_path / "absent")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"freshness: error: no feature repo folder at {tmp_path / 'absent'}"
    ]
