from __future__ import annotations

import pandas as pd


def point_in_time_join(entity_df, feature_df, *, entity_key="user_id",
                       timestamp_col="event_timestamp", feature_timestamp_col="event_timestamp",
                       created_timestamp_col=None, ttl=None, feature_names=None):
    # Not finished: just the latest row per key (leaks the future, I know).
    latest = feature_df.sort_values(feature_timestamp_col).groupby(entity_key).last()
    latest = latest.drop(columns=[c for c in [created_timestamp_col] if c], errors="ignore")
    return entity_df.merge(latest, left_on=entity_key, right_index=True, how="left")
