# Golden submission (the grader's own tests): the reference solution with one mistake:
# training_frame does not put Feast's rows back in entity_df's order.
"""Exercise 4: the lesson's Feast demo, end to end, without its two traps.

The lesson builds a small feature store for user activity: it writes `feature_store.yaml`
and a definitions file, registers them, copies the latest values into the online store
(materialize), then reads a point-in-time correct training frame from the offline store
and a serving vector from the online store. Done right, the model sees the same values in
training and in serving: no training-serving skew.

Done exactly as the lesson shows, two steps silently do nothing:

* Trap 1: `store.apply([])` registers nothing. The list passed to `apply` IS what gets
  registered; an empty list leaves the registry without entities, views or services. Run
  `feast apply` in the repo folder (it imports the definitions files for you) or pass the
  objects themselves: `store.apply([entity, view, service])`.
* Trap 2: the first `materialize_incremental(end_date=...)` starts at `now - ttl`. On data
  from 2024 that window holds no rows, so the online store stays empty and every online
  read returns `None`. Backfill an explicit window with
  `store.materialize(start_date=..., end_date=...)`.

More facts of Feast 0.67 matter here. Use the duckdb offline store, not `file`: the
file store drops entity rows that have no feature row within the TTL and merges duplicate
entity rows. Neither store returns rows in the entity frame's order: restore it yourself.
And naive timestamps mean UTC everywhere in this kit.

The data is `data/user_features.parquet`: one row per user (1..500) per day from
2024-01-01, columns `event_timestamp`, `user_id`, `daily_spend`, `num_sessions`,
`avg_session_duration_min`, `items_viewed`, `items_purchased`, `is_premium`.
See README.md for the graded tasks.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import itertools
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

#: File names this module writes inside `repo_dir`.
CONFIG_FILE = "feature_store.yaml"
DEFINITIONS_FILE = "features.py"

#: Join key of the entity and name of the entity frame's timestamp column.
ENTITY_KEY = "user_id"
TIMESTAMP_COLUMN = "event_timestamp"


def write_repo(repo_dir: str | Path, data_path: str | Path) -> None:
    """Write a Feast repo for the lesson's user activity features into `repo_dir`.

    Creates `repo_dir` (and its parents) if needed and (over)writes two files in it:

    * `feature_store.yaml`: project `user_activity`, provider `local`, the registry
      (`registry.db`) and a SQLite online store (`online_store.db`) INSIDE `repo_dir`, the
      `duckdb` offline store, `entity_key_serialization_version: 3`.
    * `features.py`: the lesson's definitions, in dependency order: an entity with join key
      `user_id` (`ValueType.INT64`); a `FileSource` reading `data_path` with
      `timestamp_field="event_timestamp"`; the feature view `user_activity` with
      `daily_spend` and `avg_session_duration_min` (Float32) and `num_sessions`,
      `items_viewed`, `items_purchased`, `is_premium` (Int64), ttl 7 days, `online=True`;
      the feature service `user_activity_v1` holding the whole view.

    `data_path` is written as an ABSOLUTE path (a relative one is resolved against the
    current directory now): the duckdb offline store reads relative paths from whatever the
    current directory is later, not from the repo. The data file is not read here.
    Calling it again rewrites the same files.
    """
    # Absolute (duckdb reads relative paths from the cwd); repr() quotes any path safely.
    repo = Path(repo_dir)
    repo.mkdir(parents=True, exist_ok=True)
    source_path = repr(str(Path(data_path).expanduser().resolve()))
    (repo / CONFIG_FILE).write_text(_CONFIG, encoding="utf-8")
    (repo / DEFINITIONS_FILE).write_text(
        _DEFINITIONS.replace("SOURCE_PATH", source_path), encoding="utf-8"
    )


_CONFIG = """\
# Written by feast_e2e.write_repo: the lesson's repo without its traps.
project: user_activity
provider: local
# Relative paths are resolved against this folder, so the repo keeps working when moved.
registry: registry.db
online_store:
  type: sqlite
  path: online_store.db
offline_store:
  # duckdb keeps every entity row; the `file` store drops and merges some.
  type: duckdb
entity_key_serialization_version: 3
"""

_DEFINITIONS = '''\
"""The lesson's user activity features (written by feast_e2e.write_repo)."""

from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.types import Float32, Int64

user = Entity(
    name="user_id",
    join_keys=["user_id"],
    value_type=ValueType.INT64,
    description="A registered user of the shop.",
)

user_activity_source = FileSource(
    name="user_activity_source",
    # Absolute: the duckdb offline store reads relative paths from the current directory.
    path=SOURCE_PATH,
    timestamp_field="event_timestamp",
)

user_activity_fv = FeatureView(
    name="user_activity",
    entities=[user],
    ttl=timedelta(days=7),
    schema=[
        Field(name="daily_spend", dtype=Float32),
        Field(name="num_sessions", dtype=Int64),
        Field(name="avg_session_duration_min", dtype=Float32),
        Field(name="items_viewed", dtype=Int64),
        Field(name="items_purchased", dtype=Int64),
        Field(name="is_premium", dtype=Int64),
    ],
    source=user_activity_source,
    online=True,
    description="Daily engagement and spend of each user.",
    tags={"owner": "feature-store-lab@example.com"},
)

user_activity_v1 = FeatureService(
    name="user_activity_v1",
    features=[user_activity_fv],
    description="Every user activity feature, version 1.",
)
'''


def apply_repo(repo_dir: str | Path) -> list[str]:
    """Register the definitions of the repo in `repo_dir`; return its feature view names, sorted.

    Every Feast object (entities, sources, feature views, feature services) defined at
    module level in the repo's top-level `*.py` files is registered, the way `feast apply`
    does it. Trap 1 of the lesson: `FeatureStore(...).apply([])` registers nothing, so the
    objects must be passed to `apply` (or `feast apply` run with `cwd=repo_dir`).

    Returns the names of the (regular) feature views the registry holds afterwards, sorted:
    `["user_activity"]` for the repo `write_repo` writes. Applying twice is harmless.

    Raises `FileNotFoundError` when `repo_dir` has no `feature_store.yaml`, and
    `ValueError` when its Python files define no Feast object (nothing would be registered).
    """
    # Pass the objects themselves: apply([]) would register nothing (trap 1).
    repo = Path(repo_dir)
    if not (repo / CONFIG_FILE).is_file():
        raise FileNotFoundError(f"{repo} has no {CONFIG_FILE}: run write_repo first")
    objects = _load_feast_objects(repo)
    if not objects:
        raise ValueError(f"no Feast objects are defined in the .py files of {repo}")
    _store(repo).apply(objects)
    return sorted(view.name for view in _store(repo).list_feature_views())


_module_ids = itertools.count()


def _load_feast_objects(repo: Path) -> list:
    """Import each top-level `*.py` file of `repo` by path; return its Feast objects."""
    from feast import Entity, FeatureService, FeatureView
    from feast.data_source import DataSource
    from feast.on_demand_feature_view import OnDemandFeatureView

    kinds = (Entity, DataSource, FeatureView, OnDemandFeatureView, FeatureService)
    found: dict[int, object] = {}
    for path in sorted(repo.glob("*.py")):
        # A unique name kept out of sys.modules: two repos with a features.py never collide.
        name = f"_feast_e2e_{next(_module_ids)}_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            continue
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        for value in vars(module).values():
            if isinstance(value, kinds):
                found.setdefault(id(value), value)
    return list(found.values())


def _store(repo: Path):
    from feast import FeatureStore

    return FeatureStore(repo_path=str(repo))


def _utc(value: dt.datetime | pd.Timestamp | str) -> dt.datetime:
    """A tz-aware UTC datetime; naive input is taken as UTC."""
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.to_pydatetime()


def materialize_online(
    repo_dir: str | Path,
    start: dt.datetime | pd.Timestamp | str,
    end: dt.datetime | pd.Timestamp | str,
) -> None:
    """Load the online store of the repo in `repo_dir` with the latest values in `[start, end]`.

    For every feature view and every entity, the row with the newest event timestamp `ts`
    such that `start <= ts <= end` is written to the online store (TTL is not applied).
    `start` and `end` are datetimes, `pandas.Timestamp`s or ISO-8601 strings; naive ones
    mean UTC. The repo must have been applied (`apply_repo`).

    Trap 2 of the lesson: the first `materialize_incremental(end_date=...)` starts at
    `now - ttl`, which on 2024 data loads nothing; use `store.materialize(start, end)`.
    The SQLite online store overwrites: materializing an older window afterwards replaces
    newer values.

    Raises `ValueError` when `start` is after `end`.
    """
    # An explicit backfill: materialize_incremental would start at now - ttl (trap 2).
    start_utc, end_utc = _utc(start), _utc(end)
    if start_utc > end_utc:
        raise ValueError(f"start {start_utc.isoformat()} is after end {end_utc.isoformat()}")
    _store(Path(repo_dir)).materialize(start_date=start_utc, end_date=end_utc)


def _short_names(features: Sequence[str]) -> list[str]:
    """Short feature names of `view:feature` references; `ValueError` on bad references."""
    if isinstance(features, str):
        raise ValueError("features must be a list of references such as 'user_activity:x'")
    names = []
    for ref in features:
        view, sep, name = str(ref).partition(":")
        if not sep or not view or not name:
            raise ValueError(f"feature reference {ref!r} is not of the form 'view:feature'")
        names.append(name)
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"feature name(s) requested twice: {', '.join(duplicated)}")
    return names


def training_frame(
    repo_dir: str | Path, entity_df: pd.DataFrame, features: Sequence[str]
) -> pd.DataFrame:
    """Point-in-time correct training frame from the repo's offline store (duckdb).

    Parameters
    ----------
    repo_dir:
        A repo written by `write_repo` and registered by `apply_repo`.
    entity_df:
        One row per training example: at least `user_id` and `event_timestamp` (naive
        values mean UTC), plus any other columns (labels...). Duplicate rows, unknown users
        and any row order are fine. It is never modified.
    features:
        Feast references `"view:feature"`, e.g. `["user_activity:daily_spend"]`.

    Returns
    -------
    pandas.DataFrame
        One row per `entity_df` row, in `entity_df`'s order and with its index; first all of
        `entity_df`'s columns with their values unchanged, then one column per reference
        named by its SHORT name (`daily_spend`), in `features` order. Each row gets the
        feature row of the same user with the latest `event_timestamp` `ts` such that
        `row_ts - 7 days <= ts <= row_ts` (the view's ttl); missing (NaN) when there is none.
        Feast returns rows in another order: the order is restored here.

    Raises `ValueError` for a reference without `view:` prefix, a feature requested twice,
    a short name equal to an `entity_df` column, or a missing `user_id`/`event_timestamp`.
    """
    # Feast returns rows in its own order: a position column lets us restore entity_df's.
    names = _short_names(features)
    for column in (ENTITY_KEY, TIMESTAMP_COLUMN):
        if column not in entity_df.columns:
            raise ValueError(f"entity_df has no {column!r} column")
    clash = [n for n in names if n in entity_df.columns]
    if clash:
        raise ValueError(f"feature name(s) {', '.join(clash)} collide with entity_df columns")
    if entity_df.empty:
        empty = {name: pd.Series(dtype="float64", index=entity_df.index) for name in names}
        return pd.concat([entity_df.copy(), pd.DataFrame(empty)], axis=1)

    row = "__feast_e2e_row__"
    query = pd.DataFrame(
        {
            ENTITY_KEY: entity_df[ENTITY_KEY].to_numpy(),
            TIMESTAMP_COLUMN: pd.to_datetime(entity_df[TIMESTAMP_COLUMN], utc=True).array,
            row: range(len(entity_df)),
        }
    )
    job = _store(Path(repo_dir)).get_historical_features(entity_df=query, features=list(features))
    result = job.to_df().reset_index(drop=True)
    if len(result) != len(entity_df):
        raise RuntimeError(f"Feast returned {len(result)} rows for {len(entity_df)} entity rows")
    out = pd.concat([entity_df.reset_index(drop=True), result[names]], axis=1)
    out.index = entity_df.index
    return out


def online_features(
    repo_dir: str | Path, user_ids: Iterable[int], features: Sequence[str]
) -> dict[str, list]:
    """Serving vectors from the repo's online store, one per user id.

    Returns a dict: `"user_id"` -> the ids as Python ints, in `user_ids` order (duplicates
    kept), then one key per reference in `features` order, named by its SHORT name, each a
    list aligned with `user_ids`. Values are what `materialize_online` loaded (Float32
    features come back rounded to float32 precision); `None` for a user the online store
    does not know, and for everyone if nothing was materialized (see trap 2). An empty
    `user_ids` gives empty lists.

    Raises `ValueError` for a reference without `view:` prefix or a feature requested twice.
    """
    # to_dict() is keyed by short names and follows entity_rows order; unknown users get None.
    names = _short_names(features)
    ids = [int(user_id) for user_id in user_ids]
    if not ids:
        return {ENTITY_KEY: [], **{name: [] for name in names}}
    response = _store(Path(repo_dir)).get_online_features(
        features=list(features), entity_rows=[{ENTITY_KEY: user_id} for user_id in ids]
    )
    values = response.to_dict()
    return {ENTITY_KEY: ids, **{name: list(values[name]) for name in names}}
