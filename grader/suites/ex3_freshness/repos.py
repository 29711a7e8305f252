"""Feast repos in known states for the ex3_freshness suites, and the checks both suites share.

Trusted side only: this module lives with the suites, which the sandbox masks, so student code
can never import the states or the expected reports. `build_repos` builds the repos once per
suite version into the oracle cache (Feast is imported only then); `repo_files` reads them as
bytes; `grader.harness.freshness_repos.install` (run in the worker through `student.harness`)
writes them into the submission's private folder, so the trusted process never writes where
student code could have planted a symlink. Everything in a built repo is
relative (registry, online store, source paths), so it works wherever it lands.

Repos (one folder each): `views` (fresh, stale, exactly at the TTL, lagging), `never` (never
materialized, online and offline), `no_ttl` (TTL 0), `moved` (one view whose source is only in
its own data/ folder) and `reference` (the kit's reference repo: absolute source path).

The states are data (`REPOS`); `expected_rows` applies the status rules of the contract to them.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

NOW = pd.Timestamp("2024-04-01", tz="UTC")
"""The moment most checks are made at."""
D = pd.Timedelta(days=1)
H = pd.Timedelta(hours=1)
PROJECT = "freshness_lab"
FEATURE_STORE_YAML = f"""\
project: {PROJECT}
provider: local
registry: data/registry.db
online_store:
  type: sqlite
  path: data/online_store.db
offline_store:
  type: duckdb
entity_key_serialization_version: 3
"""
COLUMNS = [
    "feature_view",
    "ttl_seconds",
    "latest_event_timestamp",
    "materialized_until",
    "data_age_seconds",
    "materialization_lag_seconds",
    "status",
]


@dataclass(frozen=True)
class View:
    """One feature view: its TTL, its newest event, online or not, its materialize windows."""

    ttl: pd.Timedelta
    newest: pd.Timestamp
    online: bool = True
    windows: tuple[tuple[pd.Timestamp, pd.Timestamp], ...] = ()
    tz: str = "UTC"
    """The time zone the source's timestamps are written in."""

    @property
    def materialized_until(self) -> pd.Timestamp:
        return max((end for _start, end in self.windows), default=pd.NaT)


@dataclass(frozen=True)
class Repo:
    views: dict[str, View] = field(default_factory=dict)
    mirror_sources: bool = True
    """Also copy the source files into the worker's current folder (see `install`)."""


REPOS: dict[str, Repo] = {
    "views": Repo(
        {
            # Materialized past its newest event: lag 0.
            "fresh_view": View(7 * D, NOW - D, windows=((NOW - 30 * D, NOW),)),
            # Two days old with a one-day TTL; also a day behind in the online store.
            "stale_view": View(D, NOW - 2 * D, windows=((NOW - 30 * D, NOW - 3 * D),)),
            # Exactly one TTL old at NOW: fresh; a second later: stale.
            "edge_view": View(D, NOW - D, windows=((NOW - 30 * D, NOW - D),)),
            # Two windows; the online store is six hours behind the source.
            "lagging_view": View(
                7 * D,
                NOW - D,
                windows=((NOW - 30 * D, NOW - 5 * D), (NOW - 5 * D, NOW - D - 6 * H)),
            ),
        },
    ),
    "never": Repo(
        {
            "never_view": View(7 * D, NOW - D, tz="Asia/Tokyo"),
            "never_stale_view": View(D, NOW - 3 * D),
            "offline_view": View(7 * D, NOW - D, online=False),
            "offline_stale_view": View(D, NOW - 3 * D, online=False),
        },
    ),
    "no_ttl": Repo(
        {
            "no_ttl_view": View(
                pd.Timedelta(0), NOW - 400 * D, windows=((NOW - 500 * D, NOW - 400 * D),)
            ),
            "no_ttl_lagging_view": View(
                pd.Timedelta(0), NOW - D, windows=((NOW - 30 * D, NOW - D - 6 * H),)
            ),
        },
    ),
    "moved": Repo(
        {"moved_view": View(7 * D, NOW - 2 * D, windows=((NOW - 30 * D, NOW - 2 * D),))},
        mirror_sources=False,
    ),
}


def write_source(path: Path, newest: pd.Timestamp, tz: str) -> None:
    """Three days of rows for users 1 and 2, the newest at `newest`, written in `tz`."""
    stamps = pd.Series([newest - 2 * D, newest - D, newest, newest - D]).dt.tz_convert(tz)
    frame = pd.DataFrame(
        {"user_id": [1, 1, 1, 2], "event_timestamp": stamps, "spend": [1.0, 2.0, 3.0, 4.0]}
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)


def _build_repo(root: Path, repo: Repo) -> None:
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64

    root.mkdir(parents=True, exist_ok=True)
    (root / "feature_store.yaml").write_text(FEATURE_STORE_YAML)
    user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64)
    views = []
    for name, view in repo.views.items():
        relative = f"data/{name}.parquet"
        write_source(root / relative, view.newest, view.tz)
        views.append(
            FeatureView(
                name=name,
                entities=[user],
                ttl=view.ttl.to_pytimedelta(),
                schema=[Field(name="spend", dtype=Float64)],
                # Relative to the repo folder (the contract): the copy works anywhere.
                source=FileSource(
                    name=f"{name}_source", path=relative, timestamp_field="event_timestamp"
                ),
                online=view.online,
            )
        )
    store = FeatureStore(repo_path=str(root))
    store.apply([user, *views])
    for name, view in repo.views.items():
        fv = store.get_feature_view(name)
        for start, end in view.windows:
            # What `materialize` records in the registry, without loading the online store.
            store.registry.apply_materialization(
                fv, PROJECT, start.to_pydatetime(), end.to_pydatetime()
            )
            fv = store.get_feature_view(name)


def cache_name() -> str:
    """The oracle-cache name of the built repos: changes whenever this module or the states
    change (the hidden suite adds states of its own to `REPOS`)."""
    states = repr(sorted(REPOS.items())).encode()
    digest = hashlib.sha256(Path(__file__).read_bytes() + states).hexdigest()[:12]
    return f"ex3-repos-{digest}"


def build_repos(folder: Path) -> Path:
    """Build every repo of `REPOS` under `folder` unless it is there; return `folder`.

    Built in a temporary sibling and renamed into place, so concurrent graders never see a
    half-built folder.
    """
    if (folder / "complete").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
    try:
        for name, repo in REPOS.items():
            _build_repo(tmp / name, repo)
        (tmp / "complete").write_text("ok\n")
        try:
            os.rename(tmp, folder)
        except OSError:
            if not (folder / "complete").is_file():  # not a concurrent build that won
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def repo_files(built: Path, reference_repo: Path | None = None) -> dict[str, bytes]:
    """Every file the suites install, as `{relative path: bytes}` (trusted side).

    The kit's reference repo (`reference/`) is included when its registry exists: its
    feature_store.yaml and registry only; its source path is absolute, into the kit's data/.
    """
    files: dict[str, bytes] = {}
    for name in REPOS:
        root = built / name
        for path in sorted(root.rglob("*")):
            if path.is_file() and path.name != "online_store.db":
                files[f"{name}/{path.relative_to(root).as_posix()}"] = path.read_bytes()
    if reference_repo is not None and (reference_repo / "data" / "registry.db").is_file():
        for rel in ("feature_store.yaml", "data/registry.db"):
            files[f"reference/{rel}"] = (reference_repo / rel).read_bytes()
    return files


def mirrored_sources() -> list[str]:
    """The source files (relative paths) that `install` also copies into the cwd's data/."""
    return [
        f"{name}/data/{view}.parquet"
        for name, repo in REPOS.items()
        if repo.mirror_sources
        for view in repo.views
    ]


def status(view: View, now: pd.Timestamp, max_lag: pd.Timedelta | None = None) -> str:
    """The contract's status of `view` at `now`: the first rule that applies."""
    age = now - view.newest
    until = view.materialized_until
    lag = max(view.newest - until, pd.Timedelta(0)) if pd.notna(until) else pd.NaT
    if view.ttl > pd.Timedelta(0) and age > view.ttl:
        return "stale"
    if view.online and not view.windows:
        return "not_materialized"
    if max_lag is not None and pd.notna(lag) and lag > max_lag:
        return "lagging"
    if view.ttl == pd.Timedelta(0):
        return "no_ttl"
    return "fresh"


def expected_rows(repo: str, now: pd.Timestamp, max_lag: pd.Timedelta | None = None) -> dict:
    """`{view name: {column: value}}` the contract gives for `repo` at `now`."""
    rows = {}
    for name in sorted(REPOS[repo].views):
        view = REPOS[repo].views[name]
        until = view.materialized_until
        lag = max(view.newest - until, pd.Timedelta(0)) if pd.notna(until) else pd.NaT
        rows[name] = {
            "feature_view": name,
            "ttl_seconds": view.ttl.total_seconds(),
            "latest_event_timestamp": view.newest,
            "materialized_until": until,
            "data_age_seconds": (now - view.newest).total_seconds(),
            "materialization_lag_seconds": lag.total_seconds() if pd.notna(lag) else float("nan"),
            "status": status(view, now, max_lag),
        }
    return rows


def expected_report(repo: str, now: pd.Timestamp, max_lag: pd.Timedelta | None = None):
    """`expected_rows` as a report frame shaped like `check_freshness`'s."""
    frame = pd.DataFrame(list(expected_rows(repo, now, max_lag).values()), columns=COLUMNS)
    for column in ("latest_event_timestamp", "materialized_until"):
        frame[column] = pd.to_datetime(frame[column], utc=True).dt.as_unit("ns")
    return frame


# -- trusted-side checks shared by the public and hidden suites ---------------------------------

_NOT_GIVEN = object()


def when(stamp) -> str:
    """An instant as the learner reads it: `2024-04-01 00:00 UTC`."""
    stamp = pd.Timestamp(stamp)
    if stamp.tzinfo is None:
        return stamp.strftime("%Y-%m-%d %H:%M:%S").removesuffix(":00") + " (naive)"
    return stamp.strftime("%Y-%m-%d %H:%M:%S").removesuffix(":00") + f" {stamp.tzname()}"


def span(delta: pd.Timedelta) -> str:
    """A duration as the learner reads it: `7 days`, `6 hours`, `0`."""
    seconds = pd.Timedelta(delta).total_seconds()
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds and seconds % size == 0:
            n = int(seconds // size)
            return f"{n} {unit}{'' if n == 1 else 's'}"
    return f"{seconds:g} seconds"


def describe(repo: str, name: str) -> str:
    """One view's state, for feedback."""
    view = REPOS[repo].views[name]
    ttl = span(view.ttl) if view.ttl > pd.Timedelta(0) else "0 (no TTL)"
    parts = [f"ttl {ttl}", f"newest event {when(view.newest)}"]
    parts.append("online" if view.online else "offline (online=False)")
    if view.windows:
        parts.append(f"materialized until {when(view.materialized_until)}")
    else:
        parts.append("never materialized")
    return f"view {name!r} ({', '.join(parts)})"


def call_text(repo: str, now=_NOT_GIVEN, max_lag=None) -> str:
    views = ", ".join(sorted(REPOS[repo].views)) if repo in REPOS else "user_activity"
    args = "" if now is _NOT_GIVEN else f", now={when(now)}"
    if max_lag is not None:
        args += f", max_materialization_lag={span(max_lag)}"
    left_out = " (now left out)" if now is _NOT_GIVEN else ""
    return f"Called check_freshness(repo{args}){left_out} on a repo with the views [{views}]"


def check_freshness(
    student, folders: dict, cache: dict, repo: str, now=NOW, max_lag=None, *, hint: str = ""
):
    """`(report, call text)` of the student's check_freshness on `repo`; calls are cached.

    `now=None` leaves `now` out of the call (the wall-clock default). An exception the call
    raised fails the test with the call described, followed by `hint`.
    """
    from grader.sandbox.proxy import StudentError

    shown = _NOT_GIVEN if now is None else now
    call = call_text(repo, shown, max_lag)
    key = (repo, repr(now), repr(max_lag))
    if key not in cache or now is None:
        kwargs = {} if now is None else {"now": now}
        if max_lag is not None:
            kwargs["max_materialization_lag"] = max_lag
        try:
            cache[key] = student.check_freshness(str(folders[repo]), **kwargs)
        except StudentError as exc:
            cache[key] = exc
    result = cache[key]
    if isinstance(result, StudentError):
        if result.not_implemented:
            raise result
        where = f" ({result.where})" if result.where else ""
        raise AssertionError(
            f"{call}; it raised {result.type_name}: {result.message}{where}"
            + (f"; expected a report: {hint}" if hint else ", expected a report.")
        )
    assert isinstance(result, pd.DataFrame), (
        f"{call}; got a value of type {type(result).__name__}, expected a pandas DataFrame "
        "with one row per feature view."
    )
    return result, call


def rows(report: pd.DataFrame, call: str) -> dict[str, dict]:
    """The report's rows by view name."""
    assert "feature_view" in report.columns, (
        f"{call}; the report has no column 'feature_view' (its columns: "
        f"{list(report.columns)}), expected exactly {COLUMNS}."
    )
    return {str(row["feature_view"]): row for row in report.to_dict("records")}


def cell(table: dict[str, dict], name: str, column: str, call: str):
    assert name in table, (
        f"{call}; the report has no row for the view {name!r} (its rows: {sorted(table)}), "
        "expected one row per feature view in the registry."
    )
    row = table[name]
    assert column in row, (
        f"{call}; the report has no column {column!r} (its columns: {list(row)}), expected "
        f"exactly {COLUMNS}."
    )
    return row[column]


def is_missing(value) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def seconds_equal(got, want: float) -> bool:
    """Seconds as a number (NaN, None or NA when `want` is NaN)."""
    if is_missing(want):
        return is_missing(got)
    if is_missing(got) or isinstance(got, bool | str):
        return False
    try:
        return abs(float(got) - want) <= 1e-3
    except (TypeError, ValueError):
        return False


def instant_equal(got, want) -> bool:
    """The same instant (naive read as UTC; NaT, None or NA when `want` is NaT)."""
    if is_missing(want):
        return is_missing(got)
    if is_missing(got):
        return False
    try:
        stamp = pd.Timestamp(got)
    except (TypeError, ValueError):
        return False
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp
    return stamp == want


def show(value) -> str:
    if is_missing(value):
        return "missing"
    if isinstance(value, pd.Timestamp):
        return when(value)
    return repr(value.item() if hasattr(value, "item") else value)


def run_main(student, argv: list[str]) -> tuple[int | None, str, str, str | None]:
    """`(exit code, stdout, stderr, problem)` of the student's `main(argv)`.

    A `SystemExit` from main counts as its exit code; any other exception is the problem.
    """
    from grader.sandbox.proxy import StudentError

    try:
        code = student.main(argv)
    except StudentError as exc:
        if exc.not_implemented:
            raise
        out, err = student.last.stdout, student.last.stderr
        if exc.is_a("SystemExit"):
            text = exc.message.strip()
            if text in ("", "None"):
                return 0, out, err, None
            try:
                return int(text), out, err, None
            except ValueError:
                return 1, out, err + "\n" + text, None
        return None, out, err, f"raised {exc.type_name}: {exc.message}"
    return code, student.last.stdout, student.last.stderr, None


def names_in(text: str, name: str) -> bool:
    """Whether `text` names `name` as a whole word (stale_view is not in never_stale_view)."""
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", text) is not None


def says_status(text: str, status: str) -> bool:
    """Whether `text` says `status` (not_materialized may be written with a space or dash)."""
    pattern = re.escape(status).replace("_", "[ _-]")
    found = re.search(rf"(?<![A-Za-z0-9_]){pattern}(?![A-Za-z0-9_])", text, re.IGNORECASE)
    return found is not None
