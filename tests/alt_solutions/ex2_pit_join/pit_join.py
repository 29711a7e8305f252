"""A second, differently written correct answer to ex2: numpy `searchsorted`, no merge_asof.

Written from the README and the stub's docstring alone, to prove the suites judge values and
not one way of computing them (tests/test_alt_solutions.py grades it and wants full marks).
Every timestamp becomes int64 nanoseconds since the epoch (UTC); keys become small int codes;
one lexsort orders the feature rows so that, within a key, the winner of any tie comes last;
one `searchsorted` per entity row (vectorised) finds the last feature row at or before it.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from datetime import timedelta

import numpy as np
import pandas as pd

_NAT = np.iinfo(np.int64).min


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
    """Attach to each entity row the feature values that were current at its timestamp."""
    for frame, label, columns in (
        (entity_df, "entity_df", [entity_key, timestamp_col]),
        (
            feature_df,
            "feature_df",
            [entity_key, feature_timestamp_col, *([created_timestamp_col] or [])],
        ),
    ):
        for column in columns:
            if column is not None and column not in frame.columns:
                raise ValueError(f"{label} is missing the column {column!r}")
    if isinstance(feature_names, str):
        raise TypeError("feature_names must be a sequence of names, not a string")
    if feature_names is None:
        skip = {entity_key, feature_timestamp_col, created_timestamp_col}
        names = [c for c in feature_df.columns if c not in skip]
    else:
        names = list(feature_names)
        if len(set(names)) != len(names):
            raise ValueError(f"feature_names repeats a name: {names}")
        absent = [n for n in names if n not in feature_df.columns]
        if absent:
            raise ValueError(f"feature_names names columns feature_df lacks: {absent}")
    clash = [n for n in names if n in entity_df.columns]
    if clash:
        raise ValueError(f"feature columns {clash} are also entity_df columns")
    if ttl is not None and not isinstance(ttl, timedelta):
        raise TypeError(f"ttl must be a timedelta or None, got {type(ttl).__name__}")
    if ttl is not None and ttl < timedelta(0):
        raise ValueError(f"a negative ttl ({ttl}) makes no sense")
    limit = None if ttl is None or ttl == timedelta(0) else pd.Timedelta(ttl).value

    e_ts = _nanos(entity_df[timestamp_col], timestamp_col)
    f_ts = _nanos(feature_df[feature_timestamp_col], feature_timestamp_col)
    f_created = (
        _nanos(feature_df[created_timestamp_col], created_timestamp_col)
        if created_timestamp_col is not None
        else np.zeros(len(feature_df), dtype=np.int64)
    )
    both = pd.concat(
        [
            entity_df[entity_key].reset_index(drop=True),
            feature_df[entity_key].reset_index(drop=True),
        ],
        ignore_index=True,
    )
    codes, _ = pd.factorize(both)
    e_key, f_key = codes[: len(entity_df)], codes[len(entity_df) :]

    usable = (f_key >= 0) & (f_ts != _NAT)
    rows = np.flatnonzero(usable)
    # Sort by key, then event time, then created (missing first), then position: the winner of
    # every tie is the last row of its run.
    order = np.lexsort((rows, f_created[rows], f_ts[rows], f_key[rows]))
    rows = rows[order]
    s_key, s_ts = f_key[rows], f_ts[rows]

    pick = np.full(len(entity_df), -1, dtype=np.int64)
    asks = np.flatnonzero((e_key >= 0) & (e_ts != _NAT))
    if len(rows) and len(asks):
        # One sorted int64 per (key, time): the key times the number of distinct times, plus
        # the time's rank. Within a key the last value <= the entity's is its as-of row.
        times, ranks = np.unique(np.concatenate([s_ts, e_ts[asks]]), return_inverse=True)
        width = len(times)
        s_comp = s_key.astype(np.int64) * width + ranks[: len(rows)]
        e_comp = e_key[asks].astype(np.int64) * width + ranks[len(rows) :]
        found = np.searchsorted(s_comp, e_comp, side="right") - 1
        ok = found >= 0
        ok[ok] = s_key[found[ok]] == e_key[asks][ok]
        if limit is not None:
            ok[ok] = e_ts[asks][ok] - s_ts[found[ok]] <= limit
        pick[asks[ok]] = rows[found[ok]]

    features = feature_df[names].reset_index(drop=True).reindex(pick)
    features.index = entity_df.index
    return pd.concat([entity_df, features], axis=1)


def _nanos(values: pd.Series, column: str) -> np.ndarray:
    """int64 nanoseconds since the epoch in UTC (naive read as UTC); NaT as int64 min."""
    try:
        stamps = pd.to_datetime(values, utc=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"column {column!r} cannot be read as timestamps: {exc}") from None
    return stamps.dt.tz_convert(None).dt.as_unit("ns").to_numpy().view("int64").copy()
