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
    # TODO: create repo_dir, then write feature_store.yaml and features.py (absolute data path).
    raise NotImplementedError("write_repo: write feature_store.yaml and features.py")


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
    # TODO: load the objects defined in the repo's .py files and pass them to store.apply.
    raise NotImplementedError("apply_repo: register the repo's definitions")


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
    # TODO: backfill [start, end] with store.materialize (not materialize_incremental).
    raise NotImplementedError("materialize_online: load the online store for [start, end]")


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
    # TODO: call get_historical_features, then restore entity_df's row order and index.
    raise NotImplementedError("training_frame: build the point-in-time correct training frame")


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
    # TODO: call get_online_features for the users and pick the requested columns.
    raise NotImplementedError("online_features: read the users' features from the online store")
