from __future__ import annotations

import pandas as pd


def point_in_time_join(entity_df, feature_df, *, entity_key="user_id",
                       timestamp_col="event_timestamp", feature_timestamp_col="event_timestamp",
                       created_timestamp_col=None, ttl=None, feature_names=None):
    """Cross join on the key, filter by time, keep the newest per entity row."""
    names = feature_names or [
        col for col in feature_df.columns
        if col not in (entity_key, feature_timestamp_col, created_timestamp_col)
    ]
    ents = entity_df.reset_index(drop=True).copy()
    ents["__rid"] = ents.index
    feats = feature_df.rename(columns={feature_timestamp_col: "__fts"}).copy()
    feats["__order"] = range(len(feats))
    both = ents[["__rid", entity_key, timestamp_col]].merge(feats, on=entity_key, how="inner")
    both = both[both["__fts"] <= both[timestamp_col]]
    if ttl:
        both = both[both["__fts"] >= both[timestamp_col] - ttl]
    keys = ["__fts"] + ([created_timestamp_col] if created_timestamp_col else []) + ["__order"]
    best = both.sort_values(keys).groupby("__rid").tail(1).set_index("__rid")
    result = entity_df.copy()
    for name in names:
        result[name] = best[name].reindex(range(len(entity_df))).to_numpy()
    return result
