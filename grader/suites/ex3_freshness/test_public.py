"""Public tests of ex3_freshness: the report, the main statuses, alerts and the command line.

The tests build small Feast repos in known states (see `repos.py` beside this file),
put them in your private folder and call your `check_freshness`, `format_alerts` and `main`.
Run them with `grade check ex3_freshness`.
"""

from __future__ import annotations

import re

import pandas as pd
import pytest

from grader.grading.suites import suite_module

_repos = suite_module(__file__, "repos")
COLUMNS = _repos.COLUMNS
NOW = _repos.NOW
REPOS = _repos.REPOS
build_repos = _repos.build_repos
cache_name = _repos.cache_name
cell = _repos.cell
check_freshness = _repos.check_freshness
describe = _repos.describe
expected_report = _repos.expected_report
expected_rows = _repos.expected_rows
instant_equal = _repos.instant_equal
mirrored_sources = _repos.mirrored_sources
names_in = _repos.names_in
repo_files = _repos.repo_files
rows = _repos.rows
run_main = _repos.run_main
says_status = _repos.says_status
seconds_equal = _repos.seconds_equal
show = _repos.show
when = _repos.when

H = pd.Timedelta(hours=1)
CALLS: dict = {}


@pytest.fixture(scope="module")
def repos(student, grading) -> dict:
    """The test repos, installed afresh in the submission's private folder."""
    built = build_repos(grading.cache_path(cache_name()))
    files = repo_files(built, grading.kit.feature_repo)
    folder = student.workdir / "ex3_repos"
    student.harness("freshness_repos:install", str(folder), files, mirrored_sources())
    CALLS.clear()
    return {name: folder / name for name in [*REPOS, "reference"]}


def report(student, repos, repo, now=NOW, max_lag=None, hint=""):
    return check_freshness(student, repos, CALLS, repo, now, max_lag, hint=hint)


def expect_status(table, repo, name, want, call, why):
    got = cell(table, name, "status", call)
    assert got == want, (
        f"{call}; for the {describe(repo, name)} got status {show(got)}, expected {want!r}: {why}"
    )


# -- 1. the report ------------------------------------------------------------------------------


@pytest.mark.points(1)
@pytest.mark.task(taskno=1)
def test_the_report_has_one_row_per_view_sorted_by_name_with_the_exact_columns(student, repos):
    got, call = report(student, repos, "views")
    assert list(got.columns) == COLUMNS, (
        f"{call}; got the columns {list(got.columns)}, expected exactly {COLUMNS}, in that order."
    )
    names = [str(v) for v in got["feature_view"].tolist()]
    want = sorted(REPOS["views"].views)
    assert names == want, (
        f"{call}; got the feature_view column {names}, expected {want}: one row per feature "
        "view of the registry, sorted by name."
    )
    for column in ("ttl_seconds", "data_age_seconds", "materialization_lag_seconds"):
        dtype = got[column].dtype
        assert pd.api.types.is_float_dtype(dtype), (
            f"{call}; the column {column!r} has dtype {dtype}, expected float seconds (e.g. "
            "timedelta.total_seconds())."
        )
    for column in ("latest_event_timestamp", "materialized_until"):
        dtype = got[column].dtype
        assert isinstance(dtype, pd.DatetimeTZDtype), (
            f"{call}; the column {column!r} has dtype {dtype}, expected tz-aware timestamps "
            "(datetime64[ns, UTC]): naive timestamps leave the reader guessing the zone."
        )


@pytest.mark.points(2)
@pytest.mark.task(taskno=1)
def test_the_ttl_newest_event_and_data_age_are_reported(student, repos):
    got, call = report(student, repos, "views")
    table = rows(got, call)
    for name, want in expected_rows("views", NOW).items():
        ttl = cell(table, name, "ttl_seconds", call)
        assert seconds_equal(ttl, want["ttl_seconds"]), (
            f"{call}; for the {describe('views', name)} got ttl_seconds = {show(ttl)}, "
            f"expected {want['ttl_seconds']}: the view's ttl in seconds (ttl.total_seconds())."
        )
        latest = cell(table, name, "latest_event_timestamp", call)
        assert instant_equal(latest, want["latest_event_timestamp"]), (
            f"{call}; for the {describe('views', name)} got latest_event_timestamp = "
            f"{show(latest)}, expected {when(want['latest_event_timestamp'])}: the newest value "
            "of the batch source's timestamp_field, read from its parquet file."
        )
        age = cell(table, name, "data_age_seconds", call)
        assert seconds_equal(age, want["data_age_seconds"]), (
            f"{call}; for the {describe('views', name)} got data_age_seconds = {show(age)}, "
            f"expected {want['data_age_seconds']}: now - latest_event_timestamp, in seconds."
        )


@pytest.mark.points(1)
@pytest.mark.task(taskno=1)
def test_materialized_until_and_the_materialization_lag_are_reported(student, repos):
    got, call = report(student, repos, "views")
    table = rows(got, call)
    for name, want in expected_rows("views", NOW).items():
        until = cell(table, name, "materialized_until", call)
        assert instant_equal(until, want["materialized_until"]), (
            f"{call}; for the {describe('views', name)} got materialized_until = "
            f"{show(until)}, expected {when(want['materialized_until'])}: the view's "
            "most_recent_end_time, the latest end of all its materialize windows."
        )
        lag = cell(table, name, "materialization_lag_seconds", call)
        assert seconds_equal(lag, want["materialization_lag_seconds"]), (
            f"{call}; for the {describe('views', name)} got materialization_lag_seconds = "
            f"{show(lag)}, expected {want['materialization_lag_seconds']}: max(0, newest event "
            "- materialized_until) in seconds; materializing past the newest event is lag 0."
        )


# -- 2. the statuses ----------------------------------------------------------------------------


@pytest.mark.points(1)
@pytest.mark.task(taskno=2)
def test_a_fresh_and_a_stale_view_get_their_status(student, repos):
    got, call = report(student, repos, "views")
    table = rows(got, call)
    for name, want, why in (
        ("fresh_view", "fresh", "its data is 1 day old, within its 7-day ttl"),
        ("stale_view", "stale", "its data is 2 days old, over its 1-day ttl"),
    ):
        status = cell(table, name, "status", call)
        assert status == want, (
            f"{call}; for the {describe('views', name)} got status {show(status)}, expected "
            f"{want!r}: {why}."
        )


@pytest.mark.points(2)
@pytest.mark.task(taskno=2)
def test_an_online_view_never_materialized_is_not_materialized_with_missing_end_and_lag(
    student, repos
):
    got, call = report(student, repos, "never")
    table = rows(got, call)
    name = "never_view"
    view = describe("never", name)
    until = cell(table, name, "materialized_until", call)
    assert instant_equal(until, pd.NaT), (
        f"{call}; for the {view} got materialized_until = {show(until)}, expected a missing "
        "value (NaT): most_recent_end_time is None when a view was never materialized."
    )
    lag = cell(table, name, "materialization_lag_seconds", call)
    assert seconds_equal(lag, float("nan")), (
        f"{call}; for the {view} got materialization_lag_seconds = {show(lag)}, expected a "
        "missing value (NaN): without a materialization there is no lag to measure."
    )
    latest = cell(table, name, "latest_event_timestamp", call)
    assert instant_equal(latest, NOW - pd.Timedelta(days=1)), (
        f"{call}; for the {view}, whose source holds Asia/Tokyo timestamps, got "
        f"latest_event_timestamp = {show(latest)}, expected {when(NOW - pd.Timedelta(days=1))}: "
        "the same instant in UTC (convert, do not drop the zone)."
    )
    age = cell(table, name, "data_age_seconds", call)
    assert seconds_equal(age, 86400.0), (
        f"{call}; for the {view} got data_age_seconds = {show(age)}, expected 86400.0."
    )
    status = cell(table, name, "status", call)
    assert status == "not_materialized", (
        f"{call}; for the {view} got status {show(status)}, expected 'not_materialized': an "
        "online view that was never materialized answers nothing when read online."
    )


# -- 4. alert lines -----------------------------------------------------------------------------


@pytest.mark.points(1)
@pytest.mark.task(taskno=4)
def test_format_alerts_gives_one_line_per_view_that_is_not_fresh(student):
    max_lag = pd.Timedelta(hours=1)
    table = pd.concat(
        [expected_report("views", NOW, max_lag), expected_report("never", NOW, max_lag)],
        ignore_index=True,
    )
    table = table.sort_values("feature_view", ignore_index=True)
    flagged = dict(zip(table["feature_view"], table["status"], strict=True))
    shown = ", ".join(f"{n} {s}" for n, s in flagged.items())
    call = f"Called format_alerts on a report of {len(table)} views ({shown})"
    got = student.format_alerts(table)
    assert isinstance(got, list) and all(isinstance(line, str) for line in got), (
        f"{call}; got a value of type {type(got).__name__}, expected a list of str, one "
        "alert line per view that is not fresh."
    )
    want = {n: s for n, s in flagged.items() if s != "fresh"}
    assert len(got) == len(want), (
        f"{call}; got {len(got)} lines, expected {len(want)}: one line per view whose status "
        f"is not 'fresh' ({', '.join(want)}), none for fresh views. Got: {got}"
    )
    for name, status in flagged.items():
        lines = [line for line in got if names_in(line, name)]
        if status == "fresh":
            assert not lines, (
                f"{call}; the view {name!r} is fresh, yet an alert line names it: {lines[0]!r}."
            )
            continue
        assert len(lines) == 1, (
            f"{call}; expected exactly one line naming the view {name!r} (status {status!r}), "
            f"got {len(lines)}: {lines}"
        )
        line = lines[0]
        assert "\n" not in line.strip(), (
            f"{call}; the alert for {name!r} spans several lines ({line!r}): one line per alert."
        )
        rest = line.replace(name, " ")
        assert says_status(rest, status), (
            f"{call}; the alert line for {name!r} is {line!r}, which does not say its status "
            f"{status!r}."
        )
        assert any(ch.isdigit() for ch in rest), (
            f"{call}; the alert line for {name!r} is {line!r}: give the numbers behind the "
            "status too (its data age, ttl or lag)."
        )
        for what, number in numbers_behind(table, name):
            assert says_number(line, number), (
                f"{call}; the alert line for {name!r} is {line!r}, which does not give {what} "
                f"({number}): the docstring asks for the newest event and its age in every "
                "alert, the TTL in a stale one, the end and the lag in a lagging one, "
                "durations in whole seconds (e.g. '691200 s (8.0 days)')."
            )
    fresh = expected_report("views", NOW).query("feature_view == 'fresh_view'")
    call = "Called format_alerts on a report whose only view, fresh_view, is fresh"
    got = student.format_alerts(fresh.reset_index(drop=True))
    assert got == [], f"{call}; got {got!r}, expected []: a fresh view raises no alert."


def numbers_behind(table: pd.DataFrame, name: str) -> list[tuple[str, str]]:
    """`(what, text)` an alert for view `name` of `table` must give, as the docstring asks."""
    row = table.set_index("feature_view").loc[name]
    wanted = [
        ("the date of its newest event", row["latest_event_timestamp"].strftime("%Y-%m-%d")),
        ("its data age in whole seconds", f"{row['data_age_seconds']:.0f}"),
    ]
    if row["status"] == "stale":
        wanted.append(("its TTL in whole seconds", f"{row['ttl_seconds']:.0f}"))
    if row["status"] == "lagging":
        wanted.append(
            ("the date it was materialized until", row["materialized_until"].strftime("%Y-%m-%d"))
        )
        wanted.append(("its lag in whole seconds", f"{row['materialization_lag_seconds']:.0f}"))
    return wanted


def says_number(line: str, number: str) -> bool:
    """Whether `line` holds `number` as a whole token (thousands separators allowed)."""
    plain = re.sub(r"(?<=\d)[,_](?=\d{3})", "", line)
    return re.search(rf"(?<![\d.]){re.escape(number)}(?!\d)", plain) is not None


# -- 5. the command line ------------------------------------------------------------------------


@pytest.mark.points(1)
@pytest.mark.task(taskno=5)
def test_main_prints_the_report_and_exits_1_when_a_view_needs_an_alert(student, repos):
    argv = ["--repo", str(repos["views"]), "--now", "2024-04-01T00:00:00Z"]
    call = (
        "Called main(['--repo', REPO, '--now', '2024-04-01T00:00:00Z']) on a repo with the "
        f"views {sorted(REPOS['views'].views)}, of which stale_view is stale"
    )
    code, out, err, problem = run_main(student, argv)
    assert problem is None, f"{call}; it {problem}, expected it to print the report and return 1."
    assert code == 1, (
        f"{call}; got the exit code {code!r}, expected 1: any view that is not fresh is an "
        "alert, and a cron job or CI step reads the exit code."
    )
    missing = [name for name in sorted(REPOS["views"].views) if not names_in(out, name)]
    assert not missing, (
        f"{call}; the output on stdout does not name {missing}: print the report table (every "
        "view) and then the alert lines."
    )
    assert "Traceback" not in out + err, f"{call}; it printed a traceback: {err[-500:]}"


@pytest.mark.points(1)
@pytest.mark.task(taskno=3)
def test_a_naive_now_means_utc_and_an_aware_now_is_compared_as_an_instant(student, repos):
    for now, label in (
        (pd.Timestamp("2024-04-01 00:00"), "a naive now (UTC)"),
        (pd.Timestamp("2024-04-01 09:00", tz="Asia/Tokyo"), "now in Asia/Tokyo time"),
    ):
        hint = "a naive now means UTC; convert an aware now to UTC before comparing."
        got, call = report(student, repos, "views", now, hint=hint)
        table = rows(got, call)
        age = cell(table, "fresh_view", "data_age_seconds", call)
        assert seconds_equal(age, 86400.0), (
            f"{call}, {label}; for the {describe('views', 'fresh_view')} got data_age_seconds "
            f"= {show(age)}, expected 86400.0: {when(now)} is 2024-04-01 00:00 UTC, one day "
            "after the newest event. Read a naive now as UTC and convert an aware one to UTC."
        )
        expect_status(
            table,
            "views",
            "fresh_view",
            "fresh",
            f"{call}, {label}",
            f"{when(now)} is 2024-04-01 00:00 UTC, one day after the newest event.",
        )
