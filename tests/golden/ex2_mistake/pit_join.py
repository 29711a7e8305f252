"""Exercise 2: a point-in-time join by hand with `pandas.merge_asof`.

A training example says "user 7 did something at 2024-02-15 09:00". Its features must be the
values the model could have seen at that moment, never values written later: a plain join on
`user_id` would hand the model the future (time skew, also called label leakage), and the model
would look better in training than it ever will in production.

`point_in_time_join` is the heart of `get_historical_features` in a feature store. For every
entity row (key + timestamp) it picks the newest feature row of the same key that was already
there at that timestamp, and no older than the view's TTL. The grader checks it against Feast's
own duckdb offline store, on the edge cases in the docstring, and on a million entity rows.

Run `grade check ex2_pit_join` to grade it and `grade hint ex2_pit_join` for hints. The three
underscore helpers are suggestions: use them, change them or delete them; the grader only calls
`point_in_time_join`.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from datetime import timedelta

import numpy as np
import pandas as pd


def point_in_time_join(
    entity_df: pd.DataFrame,
    feature_df: pd.DataFrame,
    *,
    entity_key: str = "user_id",
    timestamp_col: str = "event_timestamp",
    feature_timestamp_col: str = "event_timestamp",
    created_timestamp_col: str | None = None,
    ttl: timedelta | None = None,
    feature_names: Sequence[Hashable] | None = None,
) -> pd.DataFrame:
    """Attach to each entity row the feature values that were current at its timestamp.

    Parameters:
        entity_df: the rows to enrich (e.g. labelled training examples). Must hold the columns
            `entity_key` and `timestamp_col`; any other columns (labels, ids) are carried along.
        feature_df: the feature history, one row per key per point in time. Must hold
            `entity_key`, `feature_timestamp_col`, `created_timestamp_col` (when given) and the
            feature columns.
        entity_key: the join key column, present in both frames.
        timestamp_col: the entity timestamp column of `entity_df`.
        feature_timestamp_col: the event timestamp column of `feature_df` (it may share its
            name with `timestamp_col`).
        created_timestamp_col: optional column of `feature_df` saying when each feature row was
            written; it breaks ties between rows with the same key and event timestamp.
        ttl: how old a feature row may be: None, or a `datetime.timedelta` (a `pd.Timedelta`
            is one). None or zero means no age limit.
        feature_names: the feature columns to attach, in this order. None means every column
            of `feature_df` except `entity_key`, `feature_timestamp_col` and
            `created_timestamp_col`, in frame order.

    Matching: for each entity row, the candidates are the feature rows with the same key and
    `entity_ts - ttl <= feature_ts <= entity_ts` (both bounds inclusive; no lower bound when
    `ttl` is None or zero). The winner is the candidate with the latest `feature_ts`; ties go to
    the latest `created_timestamp_col` (a missing created value loses) and then to the row that
    comes last in `feature_df`. No candidate means missing feature values.

    Timestamps may be naive (read as UTC) or tz-aware in any timezone (compared as instants),
    and of any resolution; the two frames may differ. Keys are compared by value, so int64 3,
    Int64 3 and float 3.0 are the same key; a missing key matches nothing. Entity rows with a
    missing timestamp get missing features; feature rows with a missing key or event
    timestamp are never picked. Neither frame needs to be sorted, and duplicate entity rows
    each get their own output row.

    Returns:
        A new frame with one row per entity row, in the same order and with the same index as
        `entity_df`: its columns first, unchanged in values and dtypes, then the feature
        columns. A feature column keeps its dtype when every row found a match; otherwise it
        gets a missing value where nothing matched, upcast the way pandas reindexing does
        (int64 becomes float64 with NaN, bool becomes object); float, timestamp, object and
        nullable columns (Int64, boolean, string) keep their dtype and use NaN, NaT, None or
        <NA>. The inputs are never modified.

    Raises:
        ValueError: naming the culprit, when a required column or a name in `feature_names` is
            missing, when `feature_names` names a column twice, when `ttl` is negative, when a
            feature column has the same name as an `entity_df` column, or when a timestamp
            column cannot be read as timestamps.
        TypeError: when `ttl` is not None or a timedelta, or `feature_names` is a single string.

    Must be vectorised: a million entity rows over 45,000 feature rows take seconds.
    """
    # Validate before any work, so a bad call fails fast with a message naming the culprit.
    names = _feature_columns(
        entity_df,
        feature_df,
        entity_key=entity_key,
        timestamp_col=timestamp_col,
        feature_timestamp_col=feature_timestamp_col,
        created_timestamp_col=created_timestamp_col,
        feature_names=feature_names,
    )
    window = _ttl_window(ttl)
    n_entities = len(entity_df)

    # One int code per key value (3, Int64 3 and 3.0 alike); -1 for missing or unasked-for keys.
    entity_codes, uniques = pd.factorize(entity_df[entity_key])
    feature_codes = pd.Index(uniques).get_indexer(feature_df[entity_key])

    # Small frames of plain columns: no clash with user column names, cheap to sort.
    left = pd.DataFrame(
        {
            "ts": _utc(entity_df, timestamp_col, "entity_df").array,
            "key": entity_codes,
            "pos": np.arange(n_entities),
        }
    )
    right = pd.DataFrame(
        {
            "ts": _utc(feature_df, feature_timestamp_col, "feature_df").array,
            "key": feature_codes,
            "row": np.arange(len(feature_df)),
        }
    )
    # merge_asof rejects null join values, and such rows cannot match anyway.
    left = left[left["ts"].notna() & (left["key"] >= 0)].sort_values("ts", kind="stable")
    right = right[right["ts"].notna() & (right["key"] >= 0)]
    order = ["ts", "row"]
    if created_timestamp_col is not None:
        created = _utc(feature_df, created_timestamp_col, "feature_df").array
        right = right.assign(created=created[right["row"].to_numpy()])
        order = ["ts", "created", "row"]
    # Among equal timestamps merge_asof keeps the last row, so sort the winner of a tie last.
    right = right.sort_values(order, na_position="first")[["ts", "key", "row"]]

    # direction="backward" gives feature_ts <= entity_ts; tolerance is the inclusive TTL bound.
    # Golden mistake: a feature row stamped at exactly the entity timestamp is skipped.
    matched = pd.merge_asof(
        left,
        right,
        on="ts",
        by="key",
        direction="backward",
        tolerance=window,
        allow_exact_matches=False,
    )
    rows = np.full(n_entities, -1, dtype=np.int64)
    rows[matched["pos"].to_numpy()] = matched["row"].fillna(-1).to_numpy(dtype=np.int64)

    # Reindexing by row number puts the matches in entity order; -1 is not a label, so missing.
    features = feature_df[names].reset_index(drop=True).reindex(rows)
    features.index = entity_df.index
    return pd.concat([entity_df, features], axis=1)


def _feature_columns(
    entity_df: pd.DataFrame,
    feature_df: pd.DataFrame,
    *,
    entity_key: str,
    timestamp_col: str,
    feature_timestamp_col: str,
    created_timestamp_col: str | None,
    feature_names: Sequence[Hashable] | None,
) -> list[Hashable]:
    """Check the column arguments and return the feature columns to attach, in output order.

    Raises `ValueError` naming the column when a required column is missing from its frame,
    when `feature_names` names a missing column or one column twice, or when a feature column
    has the same name as a column of `entity_df`; `TypeError` when `feature_names` is a str.
    """
    required = {
        "entity_df": (entity_df, [entity_key, timestamp_col]),
        "feature_df": (
            feature_df,
            [entity_key, feature_timestamp_col]
            + ([created_timestamp_col] if created_timestamp_col is not None else []),
        ),
    }
    # Check up front: a KeyError deep inside merge_asof would not say which frame lacks what.
    for frame_name, (frame, columns) in required.items():
        for column in columns:
            if column not in frame.columns:
                raise ValueError(f"{frame_name} has no column {column!r}")

    # Key and timestamps are bookkeeping, not features, so the default leaves them out.
    if feature_names is None:
        excluded = {entity_key, feature_timestamp_col, created_timestamp_col}
        names = [column for column in feature_df.columns if column not in excluded]
    elif isinstance(feature_names, str):
        raise TypeError(
            f"feature_names must be a list of column names, not the string {feature_names!r}"
        )
    else:
        names = list(feature_names)
        seen: set[Hashable] = set()
        for name in names:
            if name not in feature_df.columns:
                raise ValueError(f"feature_df has no column {name!r} (named in feature_names)")
            if name in seen:
                raise ValueError(f"feature_names names {name!r} twice")
            seen.add(name)

    # Two output columns with one name would be ambiguous: refuse rather than rename silently.
    for name in names:
        if name in entity_df.columns:
            raise ValueError(
                f"feature column {name!r} collides with the entity_df column of the same name"
            )
    return names


def _ttl_window(ttl: timedelta | None) -> pd.Timedelta | None:
    """The TTL as a positive `pd.Timedelta`, or None when there is no age limit (None or zero).

    Raises `ValueError` when `ttl` is negative and `TypeError` when it is not a timedelta.
    """
    if ttl is None:
        return None
    if not isinstance(ttl, timedelta):
        raise TypeError(f"ttl must be None or a timedelta, not {type(ttl).__name__}")
    if ttl < timedelta(0):
        raise ValueError(f"ttl must not be negative, got {ttl}")
    # Zero is Feast's "no TTL", not "only rows stamped exactly at the entity timestamp".
    return pd.Timedelta(ttl) if ttl > timedelta(0) else None


def _utc(frame: pd.DataFrame, column: str, frame_name: str) -> pd.Series:
    """`frame[column]` as tz-aware UTC nanosecond timestamps; naive values are read as UTC.

    Raises `ValueError` naming the column when its values cannot be read as timestamps.
    """
    try:
        # utc=True reads naive values as UTC; one unit (ns) on both sides suits merge_asof.
        return pd.to_datetime(frame[column], utc=True).dt.as_unit("ns")
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(
            f"{frame_name} column {column!r} does not hold timestamps: {exc}"
        ) from None
