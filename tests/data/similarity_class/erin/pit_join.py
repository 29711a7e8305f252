from __future__ import annotations

import numpy as np
import pandas as pd


def _utc(s):
    return pd.to_datetime(s, utc=True)


def point_in_time_join(entity_df, feature_df, *, entity_key="user_id",
                       timestamp_col="event_timestamp", feature_timestamp_col="event_timestamp",
                       created_timestamp_col=None, ttl=None, feature_names=None):
    # searchsorted within each key's sorted feature times
    if feature_names is None:
        feature_names = [c for c in feature_df.columns
                         if c not in {entity_key, feature_timestamp_col, created_timestamp_col}]
    fts = _utc(feature_df[feature_timestamp_col]).to_numpy()
    ets = _utc(entity_df[timestamp_col]).to_numpy()
    winners = np.full(len(entity_df), -1)
    by_key = {}
    for pos, key in enumerate(feature_df[entity_key].to_numpy()):
        by_key.setdefault(key, []).append(pos)
    for key, rows in by_key.items():
        rows = np.array(sorted(rows, key=lambda r: (fts[r], r)))
        times = fts[rows]
        mask = entity_df[entity_key].to_numpy() == key
        where = np.searchsorted(times, ets[mask], side="right") - 1
        ok = where >= 0
        chosen = np.where(ok, rows[np.clip(where, 0, None)], -1)
        if ttl is not None and ttl:
            too_old = ets[mask] - fts[np.clip(chosen, 0, None)] > np.timedelta64(ttl)
            chosen = np.where(too_old, -1, chosen)
        winners[mask] = chosen
    values = feature_df[feature_names].reset_index(drop=True).reindex(winners)
    values.index = entity_df.index
    return entity_df.join(values)
