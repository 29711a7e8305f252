"""Exercise 3: a freshness monitor for a Feast repo.

A feature store fails quietly. When the nightly job that writes a view's source stops, or when
nobody runs `materialize`, the online store keeps answering with old values and the model keeps
predicting: no error, only worse decisions. A view's TTL says how old its data may get before
it should not be trusted, and the registry remembers up to when each view was materialized.
This monitor reads both and raises an alert for every view that is stale, was never loaded
into the online store, or lags behind its source.

Run it from the command line:

    python freshness.py --repo feature_repo --now 2024-04-01T00:00:00Z --max-lag 3600

Run `grade check ex3_freshness` to grade it and `grade hint ex3_freshness` for hints. The
underscore helpers are suggestions: use them, change them or delete them; the grader calls
`check_freshness`, `format_alerts` and `main`.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

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
"""The columns of the report, in order."""

STATUSES = ("stale", "not_materialized", "lagging", "no_ttl", "fresh")
"""Every status, in precedence order: the first that applies to a view is its status."""


def check_freshness(
    repo_path: str | Path,
    *,
    now: datetime | pd.Timestamp | str | None = None,
    max_materialization_lag: timedelta | None = None,
) -> pd.DataFrame:
    """Report how fresh every feature view of the Feast repo at `repo_path` is.

    Parameters:
        repo_path: the folder holding `feature_store.yaml` (str or Path).
        now: the moment to judge freshness at: a datetime, a `pd.Timestamp` or an ISO-8601
            string; naive means UTC. None means the current wall-clock time (UTC).
        max_materialization_lag: a `timedelta`, or None for no lag check.

    Returns:
        One row per feature view in the repo's registry (`FeatureStore.list_feature_views()`),
        sorted by `feature_view`, with exactly the columns `COLUMNS`, in that order:

        - `feature_view` (str): the view's name.
        - `ttl_seconds` (float): the view's TTL; 0.0 when it has none.
        - `latest_event_timestamp` (tz-aware UTC): the newest value of the batch source's
          `timestamp_field`, read from its parquet file; a relative source path is relative
          to `repo_path` (a `file://` prefix is allowed). NaT when the source is empty or is
          not a file source.
        - `materialized_until` (tz-aware UTC): the view's `most_recent_end_time`; NaT when it
          was never materialized.
        - `data_age_seconds` (float): `now - latest_event_timestamp`; NaN when that is NaT.
        - `materialization_lag_seconds` (float): `max(0, latest_event_timestamp -
          materialized_until)`; NaN when either is NaT.
        - `status` (str): the first that applies of
          `stale` (ttl > 0 and age > ttl: data exactly ttl old is still fresh),
          `not_materialized` (an online view never materialized; an offline view, online=False,
          is never loaded online, so it is not flagged for that),
          `lagging` (lag > `max_materialization_lag`; never when that is None),
          `no_ttl` (ttl 0: nothing would ever flag this view stale),
          `fresh`.

    Raises:
        FileNotFoundError: `repo_path` is not a folder, it has no `feature_store.yaml`, or a
            view's source file does not exist.
        ValueError: `now` cannot be read as a timestamp, or `max_materialization_lag` is
            negative.
        TypeError: `max_materialization_lag` is neither None nor a timedelta.
    """
    repo = Path(repo_path)
    # Check the cheap things before importing Feast, which takes seconds.
    if not repo.is_dir():
        raise FileNotFoundError(f"no feature repo folder at {repo}")
    if not (repo / "feature_store.yaml").is_file():
        raise FileNotFoundError(f"{repo} has no feature_store.yaml")
    moment = _utc_timestamp(pd.Timestamp.now(tz="UTC") if now is None else now, "now")
    if moment is pd.NaT:
        raise ValueError("now: not a timestamp: NaT")
    max_lag = max_materialization_lag
    if max_lag is not None and not isinstance(max_lag, timedelta):
        raise TypeError(
            f"max_materialization_lag must be a timedelta, not {type(max_lag).__name__}"
        )
    if max_lag is not None and max_lag < timedelta(0):
        raise ValueError(f"max_materialization_lag must not be negative, got {max_lag}")

    # Imported here so that importing this module (and `--help`) stays fast.
    from feast import FeatureStore

    rows = []
    for view in FeatureStore(repo_path=str(repo)).list_feature_views():
        # Feast reads a ttl of 0 back from the registry as None: both mean "no TTL".
        ttl = pd.Timedelta(view.ttl or timedelta(0))
        source = view.batch_source
        latest = _latest_event_timestamp(source, repo) if hasattr(source, "path") else pd.NaT
        ended = view.most_recent_end_time
        until = pd.NaT if ended is None else _utc_timestamp(ended, "most_recent_end_time")
        age = moment - latest
        lag = latest - until
        # Materializing past the newest event is fine: lag counts only data still missing.
        if pd.notna(lag) and lag < pd.Timedelta(0):
            lag = pd.Timedelta(0)
        rows.append(
            {
                "feature_view": view.name,
                "ttl_seconds": ttl.total_seconds(),
                "latest_event_timestamp": latest,
                "materialized_until": until,
                "data_age_seconds": age.total_seconds(),
                "materialization_lag_seconds": lag.total_seconds(),
                "status": _status(
                    ttl=ttl,
                    age=age,
                    lag=lag,
                    online=bool(view.online),
                    materialized=ended is not None,
                    max_lag=None if max_lag is None else pd.Timedelta(max_lag),
                ),
            }
        )
    report = pd.DataFrame(rows, columns=COLUMNS)
    # Fixed dtypes even for an empty registry or all-NaT columns, so callers can rely on them.
    for column in ("latest_event_timestamp", "materialized_until"):
        report[column] = pd.to_datetime(report[column], utc=True).dt.as_unit("ns")
    for column in ("ttl_seconds", "data_age_seconds", "materialization_lag_seconds"):
        report[column] = report[column].astype("float64")
    return report.sort_values("feature_view", ignore_index=True)


def format_alerts(report: pd.DataFrame) -> list[str]:
    """One human-readable alert line per view of `report` whose status is not `fresh`.

    `report` is a frame shaped like the result of `check_freshness`. Lines come in report
    order; each starts with `"<feature_view>: <status>: "` and then gives the numbers behind
    the status: the newest event and its age for every status, the TTL for `stale`, the
    materialization end and the lag for `lagging`. Durations are written in whole seconds
    followed by days, e.g. `"691200 s (8.0 days)"`; a missing value is written `none`.
    All fresh (or an empty report) gives an empty list.
    """

    def when(stamp: pd.Timestamp) -> str:
        return "none" if pd.isna(stamp) else stamp.isoformat()

    def duration(seconds: float) -> str:
        return "none" if pd.isna(seconds) else f"{seconds:.0f} s ({seconds / 86400:.1f} days)"

    lines = []
    for row in report.itertuples(index=False):
        if row.status == "fresh":
            continue
        # Every alert says how old the data is: that is what an on-call engineer asks first.
        newest = (
            f"newest event {when(row.latest_event_timestamp)}, {duration(row.data_age_seconds)} old"
        )
        if row.status == "stale":
            detail = f"{newest}, over its TTL of {duration(row.ttl_seconds)}"
        elif row.status == "not_materialized":
            detail = f"online view never materialized, online reads return nothing; {newest}"
        elif row.status == "lagging":
            detail = (
                f"online store materialized until {when(row.materialized_until)}, "
                f"{duration(row.materialization_lag_seconds)} behind the source; {newest}"
            )
        elif row.status == "no_ttl":
            detail = f"no TTL, so stale values would never be flagged; {newest}"
        else:
            detail = newest
        lines.append(f"{row.feature_view}: {row.status}: {detail}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: print the freshness table of a repo and its alerts; return the exit code.

    Options: `--repo PATH` (default: the current folder), `--now ISO-8601` (default: the
    current time; naive means UTC), `--max-lag SECONDS` (a number >= 0; default: no lag
    check). `argv` defaults to `sys.argv[1:]`.

    Prints the report (`check_freshness`) as a table on stdout, then one line per alert
    (`format_alerts`), or a line saying that every view is fresh.

    Returns:
        0 when every view is fresh (also when the repo has no views), 1 when any view has an
        alert, 2 on bad input: a missing repo folder, a folder without `feature_store.yaml`,
        an unreadable `--now`, a negative or non-numeric `--max-lag`, or a repo Feast cannot
        read. Bad input prints one line starting with `freshness: error:` on stderr, never a
        traceback. Unknown options are reported by argparse (usage and message, exit 2).
    """
    try:
        repo, now, max_lag = _parse_args(argv)
        report = check_freshness(repo, now=now, max_materialization_lag=max_lag)
    except SystemExit as exc:
        # argparse exits by itself on --help (0) and on unknown options (2): pass its code on.
        return exc.code if isinstance(exc.code, int) else 2
    except Exception as exc:
        # Anything failing here is bad input (path, option, unreadable repo): one line, no trace.
        message = (str(exc).strip() or type(exc).__name__).splitlines()[0]
        print(f"freshness: error: {message}", file=sys.stderr)
        return 2

    # The table first, so each alert below it can be read against the numbers.
    print(report.to_string(index=False) if len(report) else "no feature views in the registry")
    alerts = format_alerts(report)
    print()
    print("\n".join(alerts) if alerts else f"all {len(report)} feature views are fresh")
    return 1 if alerts else 0


def _parse_args(argv: Sequence[str] | None) -> tuple[str, datetime | None, timedelta | None]:
    """The command line of `main` as `(repo, now, max_lag)`; None where an option is absent.

    Raises `ValueError` with a one-line message when `--now` is not an ISO-8601 date or
    datetime ('Z' allowed) or `--max-lag` is not a finite number of seconds >= 0. argparse
    itself raises `SystemExit` on `--help` (code 0) and on unknown options (code 2).
    """
    parser = argparse.ArgumentParser(
        prog="freshness",
        description="Check the freshness of every feature view of a Feast repo.",
        epilog="Example: python freshness.py --repo feature_repo --now 2024-04-01 --max-lag 3600",
    )
    parser.add_argument("--repo", default=".", help="the Feast repo folder (default: .)")
    parser.add_argument("--now", help="judge freshness at this ISO-8601 time (default: now)")
    parser.add_argument("--max-lag", help="alert when materialization lags more (seconds)")
    # --now and --max-lag are parsed here, not by argparse types, to keep errors to one line.
    args = parser.parse_args(argv)
    now = None
    if args.now is not None:
        try:
            now = datetime.fromisoformat(args.now)
        except ValueError:
            raise ValueError(f"--now: not an ISO-8601 timestamp: {args.now!r}") from None
    max_lag = None
    if args.max_lag is not None:
        try:
            seconds = float(args.max_lag)
        except ValueError:
            seconds = math.nan
        # float() also reads "nan" and "inf", which are no durations.
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"--max-lag: expected seconds >= 0, got {args.max_lag!r}")
        max_lag = timedelta(seconds=seconds)
    return args.repo, now, max_lag


def _latest_event_timestamp(source: Any, repo: Path) -> pd.Timestamp:
    """The newest `source.timestamp_field` value in `source.path`, as a tz-aware UTC Timestamp.

    A relative path is relative to `repo`; a `file://` prefix is removed. NaT when the file
    has no rows (or only missing timestamps). Raises `FileNotFoundError` naming the path when
    it does not exist.
    """
    raw = str(source.path).removeprefix("file://")
    # Relative to the repo folder, not to the cwd the monitor happens to run from.
    path = Path(raw) if Path(raw).is_absolute() else repo / raw
    if not path.exists():
        raise FileNotFoundError(f"source file of {source.name!r} not found: {path}")
    stamps = pd.read_parquet(path, columns=[source.timestamp_field])[source.timestamp_field]
    return _utc_timestamp(pd.to_datetime(stamps, utc=True).max(), "latest event timestamp")


def _status(
    *,
    ttl: pd.Timedelta,
    age: pd.Timedelta,
    lag: pd.Timedelta,
    online: bool,
    materialized: bool,
    max_lag: pd.Timedelta | None,
) -> str:
    """The first status of `STATUSES` that applies (see `check_freshness`); NaT never counts."""
    # The order is the precedence: the most urgent problem names the alert.
    # Golden mistake: not_materialized is checked before stale.
    if online and not materialized:
        return "not_materialized"
    if ttl > pd.Timedelta(0) and pd.notna(age) and age > ttl:
        return "stale"
    if max_lag is not None and pd.notna(lag) and lag > max_lag:
        return "lagging"
    if ttl == pd.Timedelta(0):
        return "no_ttl"
    return "fresh"


def _utc_timestamp(value: Any, what: str) -> pd.Timestamp:
    """`value` (datetime, Timestamp, ISO string or NaT) as a tz-aware UTC ns Timestamp.

    Naive values are read as UTC; NaT stays NaT. Raises `ValueError` naming `what` when
    `value` cannot be read as a timestamp.
    """
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what}: not a timestamp: {value!r} ({exc})") from None
    if stamp is pd.NaT:
        return pd.NaT
    # Naive means UTC throughout the kit; aware values are the same instant in UTC.
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.as_unit("ns")


if __name__ == "__main__":
    raise SystemExit(main())
