from __future__ import annotations

from datetime import timedelta

import pandas as pd


def point_in_time_join(entity_df, feature_df, *, entity_key="user_id",
                       timestamp_col="event_timestamp", feature_timestamp_col="event_timestamp",
                       created_timestamp_col=None, ttl=None, feature_names=None):
    """Merge everything, drop the future and the stale, keep the last row per entity row."""
    if isinstance(ttl, timedelta) and ttl.total_seconds() < 0:
        raise ValueError("negative ttl")
    for column in (entity_key, timestamp_col):
        if column not in entity_df:
            raise ValueError(f"entity_df lacks {column}")
    cols = list(feature_names) if feature_names is not None else [
        c for c in feature_df if c not in (entity_key, feature_timestamp_col, created_timestamp_col)
    ]
    left = entity_df.assign(_row=range(len(entity_df)))
    right = feature_df.assign(_seq=range(len(feature_df))).rename(
        columns={feature_timestamp_col: "_when"}
    )
    merged = left.merge(right, on=entity_key, how="left", suffixes=("", "_f"))
    future = merged["_when"] > merged[timestamp_col]
    merged.loc[future, "_when"] = pd.NaT
    if ttl:
        stale = merged["_when"] < merged[timestamp_col] - pd.Timedelta(ttl)
        merged.loc[stale, "_when"] = pd.NaT
    merged = merged.dropna(subset=["_when"])
    order = ["_row", "_when"] + ([created_timestamp_col] if created_timestamp_col else []) + ["_seq"]
    last = merged.sort_values(order).drop_duplicates("_row", keep="last").set_index("_row")
    out = entity_df.copy()
    for c in cols:
        out[c] = last[c].reindex(range(len(entity_df))).values
    return out
