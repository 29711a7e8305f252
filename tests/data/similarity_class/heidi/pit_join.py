from __future__ import annotations

import bisect

import pandas as pd


def point_in_time_join(entity_df, feature_df, *, entity_key="user_id",
                       timestamp_col="event_timestamp", feature_timestamp_col="event_timestamp",
                       created_timestamp_col=None, ttl=None, feature_names=None):
    """A loop with bisect: slow but simple (task 7 will fail)."""
    table = {}
    for idx, row in enumerate(feature_df.itertuples(index=False)):
        rec = row._asdict()
        table.setdefault(rec[entity_key], []).append((rec[feature_timestamp_col], idx))
    for entries in table.values():
        entries.sort()
    names = feature_names or [n for n in feature_df.columns
                              if n not in (entity_key, feature_timestamp_col)]
    rows = []
    for rec in entity_df.to_dict("records"):
        entries = table.get(rec[entity_key], [])
        at = bisect.bisect_right(entries, (rec[timestamp_col], len(feature_df)))
        found = {}
        if at:
            stamp, idx = entries[at - 1]
            if ttl is None or rec[timestamp_col] - stamp <= ttl:
                found = feature_df.iloc[idx][names].to_dict()
        rows.append({n: found.get(n) for n in names})
    extra = pd.DataFrame(rows, index=entity_df.index)
    return pd.concat([entity_df, extra], axis=1)
