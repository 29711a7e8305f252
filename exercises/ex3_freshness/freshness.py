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
    # TODO: FileNotFoundError for a missing folder or feature_store.yaml; check now and the max lag.
    # TODO: from feast import FeatureStore here, inside the function: importing Feast takes seconds.
    # TODO: for each view in list_feature_views(): ttl (None is 0), newest event, end time.
    # TODO: age = now - newest; lag = max(0, newest - materialized_until); then _status.
    # TODO: one row per view, columns COLUMNS, sorted by feature_view; timestamps tz-aware UTC.
    raise NotImplementedError("check_freshness: see the TODOs in freshness.py")


def format_alerts(report: pd.DataFrame) -> list[str]:
    """One human-readable alert line per view of `report` whose status is not `fresh`.

    `report` is a frame shaped like the result of `check_freshness`. Lines come in report
    order; each starts with `"<feature_view>: <status>: "` and then gives the numbers behind
    the status: the newest event and its age for every status, the TTL for `stale`, the
    materialization end and the lag for `lagging`. Durations are written in whole seconds
    followed by days, e.g. `"691200 s (8.0 days)"`; a missing value is written `none`.
    All fresh (or an empty report) gives an empty list.
    """
    # TODO: one line per non-fresh row: "<feature_view>: <status>: " then the numbers behind it.
    raise NotImplementedError("format_alerts: see the TODOs in freshness.py")


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
    # TODO: parse with _parse_args, then run check_freshness (argparse exits itself on --help).
    # TODO: bad input: one line "freshness: error: ..." on stderr, return 2, never a traceback.
    # TODO: print the table, then the alerts (format_alerts); return 1 if any alert, else 0.
    raise NotImplementedError("main: see the TODOs in freshness.py")


def _parse_args(argv: Sequence[str] | None) -> tuple[str, datetime | None, timedelta | None]:
    """The command line of `main` as `(repo, now, max_lag)`; None where an option is absent.

    Raises `ValueError` with a one-line message when `--now` is not an ISO-8601 date or
    datetime ('Z' allowed) or `--max-lag` is not a finite number of seconds >= 0. argparse
    itself raises `SystemExit` on `--help` (code 0) and on unknown options (code 2).
    """
    # TODO: argparse with --repo (default "."), --now and --max-lag, both read as plain strings.
    # TODO: --now: datetime.fromisoformat; --max-lag: finite float >= 0; else ValueError.
    raise NotImplementedError("_parse_args: see the TODOs in freshness.py")


def _latest_event_timestamp(source: Any, repo: Path) -> pd.Timestamp:
    """The newest `source.timestamp_field` value in `source.path`, as a tz-aware UTC Timestamp.

    A relative path is relative to `repo`; a `file://` prefix is removed. NaT when the file
    has no rows (or only missing timestamps). Raises `FileNotFoundError` naming the path when
    it does not exist.
    """
    # TODO: resolve a relative path against repo; read only the timestamp column; its max in UTC.
    raise NotImplementedError("_latest_event_timestamp: see the TODOs in freshness.py")


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
    # TODO: return the first status of STATUSES that applies; NaT never counts as over a limit.
    raise NotImplementedError("_status: see the TODOs in freshness.py")


def _utc_timestamp(value: Any, what: str) -> pd.Timestamp:
    """`value` (datetime, Timestamp, ISO string or NaT) as a tz-aware UTC ns Timestamp.

    Naive values are read as UTC; NaT stays NaT. Raises `ValueError` naming `what` when
    `value` cannot be read as a timestamp.
    """
    # TODO: pd.Timestamp(value); naive -> tz_localize("UTC"), aware -> tz_convert("UTC").
    raise NotImplementedError("_utc_timestamp: see the TODOs in freshness.py")


if __name__ == "__main__":
    raise SystemExit(main())
