"""Hidden tests of ex3_freshness: boundaries, precedence, `now`, paths and bad input."""

from __future__ import annotations

import pandas as pd
import pytest

from grader.grading.suites import suite_module
from grader.sandbox.proxy import StudentError

_repos = suite_module(__file__, "repos")
NOW = _repos.NOW
REPOS = _repos.REPOS
build_repos = _repos.build_repos
cache_name = _repos.cache_name
cell = _repos.cell
check_freshness = _repos.check_freshness
describe = _repos.describe
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

D = pd.Timedelta(days=1)
H = pd.Timedelta(hours=1)
# States only the instructor's copy holds (the student kit has no test_hidden.py): an answer
# that copied the public states and their expected reports learns nothing about these.
REPOS["hidden_states"] = _repos.Repo(
    {
        # A TTL of half a day, one second over it: ttl.days is 0 here, not "no TTL".
        "half_day_view": _repos.View(
            12 * H, NOW - 12 * H - pd.Timedelta(seconds=1), windows=((NOW - 9 * D, NOW),)
        ),
        # Written in Tokyo time, two days old with a one-day TTL.
        "tokyo_view": _repos.View(
            D, NOW - 2 * D, windows=((NOW - 9 * D, NOW - 2 * D),), tz="Asia/Tokyo"
        ),
        # An hour and a half behind its source: lag 5400 s.
        "slow_view": _repos.View(
            7 * D, NOW - D, windows=((NOW - 9 * D, NOW - D - pd.Timedelta(minutes=90)),)
        ),
    }
)

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


# -- 2. the statuses ----------------------------------------------------------------------------


@pytest.mark.points(1)
@pytest.mark.task(taskno=2)
def test_data_exactly_ttl_old_is_fresh_and_one_second_older_is_stale(student, repos):
    got, call = report(student, repos, "views")
    expect_status(
        rows(got, call),
        "views",
        "edge_view",
        "fresh",
        call,
        "its data is exactly 1 day old, as old as its ttl, and stale means age > ttl, strictly.",
    )
    later = NOW + pd.Timedelta(seconds=1)
    got, call = report(student, repos, "views", later)
    table = rows(got, call)
    age = cell(table, "edge_view", "data_age_seconds", call)
    assert seconds_equal(age, 86401.0), (
        f"{call}; for the {describe('views', 'edge_view')} got data_age_seconds = {show(age)}, "
        "expected 86401.0."
    )
    expect_status(
        table,
        "views",
        "edge_view",
        "stale",
        call,
        "one second past its 1-day ttl the data is stale.",
    )


@pytest.mark.points(1)
@pytest.mark.task(taskno=2)
def test_stale_comes_before_not_materialized_and_lagging(student, repos):
    got, call = report(student, repos, "never")
    expect_status(
        rows(got, call),
        "never",
        "never_stale_view",
        "stale",
        call,
        "its data is 3 days old with a 1-day ttl; stale is checked first, so it wins over "
        "not_materialized (the first status of the list that applies is the status).",
    )
    got, call = report(student, repos, "views", NOW, H)
    expect_status(
        rows(got, call),
        "views",
        "stale_view",
        "stale",
        call,
        "it also lags a day behind its source, but stale comes before lagging in the list.",
    )


@pytest.mark.points(1)
@pytest.mark.task(taskno=3)
def test_a_view_is_lagging_only_when_its_lag_exceeds_the_max_lag(student, repos):
    for max_lag, want, why in (
        (H, "lagging", "its online store is 6 hours behind its newest event, more than 1 hour."),
        (
            6 * H,
            "fresh",
            "a lag of exactly 6 hours does not exceed a maximum of 6 hours (lag > max, strictly).",
        ),
        (None, "fresh", "without a max_materialization_lag no view is ever lagging."),
        (
            pd.Timedelta(0),
            "lagging",
            "a maximum lag of 0 is a limit (any lag alerts), not 'no limit': test `is None`, "
            "not truthiness.",
        ),
    ):
        got, call = report(student, repos, "views", NOW, max_lag)
        expect_status(rows(got, call), "views", "lagging_view", want, call, why)
        if max_lag is not None and max_lag == pd.Timedelta(0):
            expect_status(
                rows(got, call),
                "views",
                "fresh_view",
                "fresh",
                call,
                "its online store is up to date: a lag of exactly 0 does not exceed a maximum "
                "of 0 (the lag is 0 when the store got past the newest event, never negative).",
            )


@pytest.mark.points(1)
@pytest.mark.task(taskno=2)
def test_a_view_without_a_ttl_is_no_ttl_and_never_stale(student, repos):
    got, call = report(student, repos, "no_ttl")
    table = rows(got, call)
    for name in ("no_ttl_view", "no_ttl_lagging_view"):
        ttl = cell(table, name, "ttl_seconds", call)
        assert seconds_equal(ttl, 0.0), (
            f"{call}; for the {describe('no_ttl', name)} got ttl_seconds = {show(ttl)}, "
            "expected 0.0: Feast reads a ttl of 0 back as None; both mean no TTL."
        )
    expect_status(
        table,
        "no_ttl",
        "no_ttl_view",
        "no_ttl",
        call,
        "a view without a TTL is never stale, which deserves a warning of its own.",
    )
    got, call = report(student, repos, "no_ttl", NOW + 1000 * D)
    expect_status(
        rows(got, call),
        "no_ttl",
        "no_ttl_view",
        "no_ttl",
        call,
        "however old its data, a view with ttl 0 is never stale.",
    )
    got, call = report(student, repos, "no_ttl", NOW, H)
    expect_status(
        rows(got, call),
        "no_ttl",
        "no_ttl_lagging_view",
        "lagging",
        call,
        "it lags 6 hours, more than 1 hour, and lagging comes before no_ttl in the list.",
    )


@pytest.mark.points(0.5)
@pytest.mark.task(taskno=2)
def test_ttls_of_hours_sources_in_any_zone_and_lags_of_minutes_are_judged_exactly(student, repos):
    got, call = report(student, repos, "hidden_states", NOW, H)
    table = rows(got, call)
    for name, column, want in (
        ("half_day_view", "ttl_seconds", 43200.0),
        ("half_day_view", "data_age_seconds", 43201.0),
        ("tokyo_view", "data_age_seconds", 172800.0),
        ("slow_view", "materialization_lag_seconds", 5400.0),
    ):
        value = cell(table, name, column, call)
        assert seconds_equal(value, want), (
            f"{call}; for the {describe('hidden_states', name)} got {column} = {show(value)}, "
            f"expected {want}: durations are float seconds of the exact difference (not whole "
            "days), and timestamps in any zone are compared as instants."
        )
    for name, want, why in (
        ("half_day_view", "stale", "its data is one second older than its 12-hour TTL"),
        (
            "tokyo_view",
            "stale",
            "its data is two days old (written in Tokyo time) over a 1-day TTL",
        ),
        ("slow_view", "lagging", "its online store is 90 minutes behind, over the 1-hour limit"),
    ):
        expect_status(table, "hidden_states", name, want, call, why)


@pytest.mark.points(0.5)
@pytest.mark.task(taskno=2)
def test_an_offline_view_is_never_flagged_as_not_materialized(student, repos):
    got, call = report(student, repos, "never")
    table = rows(got, call)
    expect_status(
        table,
        "never",
        "offline_view",
        "fresh",
        call,
        "an offline view (online=False) is never loaded into the online store, so never "
        "materializing it is no problem; its data is 1 day old with a 7-day ttl.",
    )
    expect_status(
        table,
        "never",
        "offline_stale_view",
        "stale",
        call,
        "an offline view can still be stale: 3-day-old data, 1-day ttl.",
    )


# -- 3. now and the lag limit -------------------------------------------------------------------


@pytest.mark.points(0.5)
@pytest.mark.task(taskno=3)
def test_now_defaults_to_the_current_time(student, repos):
    before = pd.Timestamp.now(tz="UTC")
    hint = "without now, judge at the current time in UTC (pd.Timestamp.now(tz='UTC'))."
    got, call = report(student, repos, "views", None, hint=hint)
    after = pd.Timestamp.now(tz="UTC")
    table = rows(got, call)
    for name, view in REPOS["views"].views.items():
        age = cell(table, name, "data_age_seconds", call)
        low = (before - view.newest).total_seconds() - 5
        high = (after - view.newest).total_seconds() + 5
        try:
            ok = low <= float(age) <= high
        except (TypeError, ValueError):
            ok = False
        assert ok, (
            f"{call}, at about {when(before.floor('s'))}; for the "
            f"{describe('views', name)} got data_age_seconds = {show(age)}, expected about "
            f"{low + 5:.0f}: now defaults to the current time in UTC "
            "(pd.Timestamp.now(tz='UTC')), not to the newest event or a fixed date."
        )
    expect_status(
        table,
        "views",
        "fresh_view",
        "stale",
        call,
        "judged against today's date, data from 2024 is far older than its 7-day ttl.",
    )


@pytest.mark.points(0.5)
@pytest.mark.task(taskno=3)
def test_an_unreadable_now_a_negative_lag_limit_and_a_missing_repo_raise_clear_errors(
    student, repos
):
    views = str(repos["views"])
    cases = [
        ("now='yesterday'", "ValueError", (views,), {"now": "yesterday"}),
        ("now='NaT' (no moment at all)", "ValueError", (views,), {"now": "NaT"}),
        (
            "max_materialization_lag=-1 second",
            "ValueError",
            (views,),
            {"now": NOW, "max_materialization_lag": pd.Timedelta(seconds=-1)},
        ),
        ("a folder that does not exist", "FileNotFoundError", (views + "_gone",), {"now": NOW}),
        (
            "a folder without feature_store.yaml",
            "FileNotFoundError",
            (str(repos["views"] / "data"),),
            {"now": NOW},
        ),
    ]
    for what, kind, args, kwargs in cases:
        call = f"Called check_freshness with {what}"
        try:
            got = student.check_freshness(*args, **kwargs)
        except StudentError as exc:
            if exc.not_implemented:
                raise
            assert exc.is_a(kind), (
                f"{call}; it raised {exc.type_name}: {exc.message}, expected {kind}: check the "
                "arguments before opening the repo (README task 3)."
            )
            continue
        raise AssertionError(f"{call}; it returned {type(got).__name__}, expected {kind}.")


# -- 1. the report: where the data is -----------------------------------------------------------


@pytest.mark.points(1)
@pytest.mark.task(taskno=1)
def test_sources_are_read_from_the_repo_folder_and_missing_end_times_stay_utc(student, repos):
    hint = (
        "a relative source path is relative to the repo folder (Path(repo_path) / path), not "
        "to the current folder."
    )
    got, call = report(student, repos, "moved", hint=hint)
    call += (
        " whose source path is the relative 'data/moved_view.parquet', present in the repo "
        "folder but not in the current folder"
    )
    table = rows(got, call)
    latest = cell(table, "moved_view", "latest_event_timestamp", call)
    assert instant_equal(latest, NOW - 2 * D), (
        f"{call}; got latest_event_timestamp = {show(latest)}, expected "
        f"{when(NOW - 2 * D)}: a relative source path is relative to the repo folder "
        "(Path(repo_path) / path), not to the current folder."
    )
    age = cell(table, "moved_view", "data_age_seconds", call)
    assert seconds_equal(age, 2 * 86400.0), (
        f"{call}; got data_age_seconds = {show(age)}, expected 172800.0."
    )
    # A registry whose views were never materialized: materialized_until is all NaT, and a
    # column built from None values would be object-typed, no longer tz-aware UTC.
    got, call = report(student, repos, "never")
    dtype = got["materialized_until"].dtype
    assert isinstance(dtype, pd.DatetimeTZDtype) and str(dtype.tz) == "UTC", (
        f"{call}, where no view was ever materialized; the column 'materialized_until' has "
        f"dtype {dtype}, expected datetime64[ns, UTC] even when every value is missing (NaT): "
        "callers compare it with other UTC timestamps (pd.to_datetime(..., utc=True))."
    )


# -- 5. the command line ------------------------------------------------------------------------


@pytest.mark.points(1)
@pytest.mark.task(taskno=5)
def test_main_exits_0_when_the_reference_repo_is_fresh_and_1_once_it_is_stale(student, repos):
    for now, want, why in (
        ("2024-04-01T00:00:00Z", 0, "its newest event (2024-03-30) is 2 days old, within its ttl"),
        (
            "2024-04-10T00:00:00+00:00",
            1,
            "its newest event is then 11 days old, over its 7-day ttl",
        ),
    ):
        argv = ["--repo", str(repos["reference"]), "--now", now]
        call = (
            f"Called main(['--repo', REPO, '--now', {now!r}]) on the kit's reference repo (one "
            "view, user_activity, whose source path is absolute)"
        )
        code, out, err, problem = run_main(student, argv)
        assert problem is None, f"{call}; it {problem}, expected it to return {want}."
        assert code == want, f"{call}; got the exit code {code!r}, expected {want}: {why}."
        assert names_in(out, "user_activity"), (
            f"{call}; stdout does not name the view user_activity: print the report table. "
            f"Got: {out[-300:]!r}"
        )


@pytest.mark.points(1)
@pytest.mark.task(taskno=5)
def test_main_reads_options_written_with_equals_a_z_suffix_and_fractional_seconds(student, repos):
    for max_lag, lagging in (("21599.5", True), ("21600", False), ("0", True)):
        argv = ["--repo", str(repos["views"]), "--now=2024-04-01T00:00:00Z", f"--max-lag={max_lag}"]
        call = f"Called main({argv!r}) on a repo whose view lagging_view is 6 hours behind"
        code, out, err, problem = run_main(student, argv)
        assert problem is None, f"{call}; it {problem}, expected it to return 1."
        assert code == 1, (
            f"{call}; got the exit code {code!r}, expected 1 (stale_view is stale); stderr: "
            f"{err[-300:]!r}. `--opt=value` is the same option as `--opt value` (argparse reads "
            "both) and `Z` means UTC."
        )
        alerted = any(
            line.startswith("lagging_view:") and says_status(line, "lagging")
            for line in out.splitlines()
        )
        assert alerted == lagging, (
            f"{call}; the alert lines {'do not say' if lagging else 'say'} 'lagging_view: "
            f"lagging: ...', expected {'one' if lagging else 'none'}: a lag of 6 hours "
            f"{'exceeds' if lagging else 'does not exceed'} --max-lag {max_lag} seconds (a "
            "number of seconds >= 0, fractions included; 0 is a limit too)."
        )


@pytest.mark.points(1)
@pytest.mark.task(taskno=5)
def test_main_exits_2_with_one_line_and_no_traceback_on_bad_input(student, repos):
    folder = repos["views"].parent
    cases = [
        (
            ["--repo", str(folder / "no_such_repo"), "--now", "2024-04-01"],
            "a repo folder that does not exist",
            ("no_such_repo",),
        ),
        (
            ["--repo", str(folder), "--now", "2024-04-01"],
            "a folder without feature_store.yaml",
            (),
        ),
        (
            ["--repo", str(repos["views"]), "--now", "next tuesday"],
            "--now 'next tuesday'",
            ("next tuesday", "now"),
        ),
        (
            ["--repo", str(repos["views"]), "--now", "2024-04-01", "--max-lag", "-5"],
            "--max-lag -5",
            ("-5", "max-lag", "max_lag", "lag"),
        ),
        (
            ["--repo", str(repos["views"]), "--now", "2024-04-01", "--max-lag", "soon"],
            "--max-lag soon",
            ("soon", "max-lag", "max_lag", "lag"),
        ),
    ]
    for argv, what, mentions in cases:
        call = f"Called main with {what} ({' '.join(argv[:1] + ['...'] + argv[2:])})"
        code, out, err, problem = run_main(student, argv)
        assert problem is None, (
            f"{call}; it {problem}, expected it to print one line on stderr and return 2: "
            "catch bad input in main."
        )
        assert "Traceback" not in out + err, (
            f"{call}; it printed a traceback, expected one clear line on stderr and exit code 2."
        )
        assert code == 2, f"{call}; got the exit code {code!r}, expected 2 (bad input)."
        lines = [line for line in err.strip().splitlines() if line.strip()]
        assert len(lines) == 1, (
            f"{call}; stderr held {len(lines)} lines ({err.strip()[:300]!r}), expected exactly "
            "one line saying what is wrong."
        )
        if mentions:
            assert any(m.lower() in lines[0].lower() for m in mentions), (
                f"{call}; the message {lines[0]!r} does not say what is wrong: name the bad "
                f"value or option ({mentions[0]!r})."
            )
    # argparse reports an unknown option itself (usage and message on stderr, exit 2).
    argv = ["--repo", str(repos["views"]), "--no-such-option"]
    call = "Called main(['--repo', REPO, '--no-such-option'])"
    code, out, err, problem = run_main(student, argv)
    assert problem is None and "Traceback" not in out + err, (
        f"{call}; it {problem or 'printed a traceback'}, expected a usage message and exit 2."
    )
    assert code == 2, (
        f"{call}; got the exit code {code!r}, expected 2: an unknown option is bad input "
        "(argparse exits with 2 by itself; pass its code on)."
    )
