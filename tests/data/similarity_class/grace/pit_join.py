from __future__ import annotations

import pandas as pd


class _Join:
    def __init__(self, key, ets, fts, created):
        self.key, self.ets, self.fts, self.created = key, ets, fts, created

    def frames(self, entity_df, feature_df):
        e = entity_df[[self.key, self.ets]].copy()
        e.columns = ["key", "when"]
        e["when"] = pd.to_datetime(e["when"], utc=True)
        e["i"] = range(len(e))
        f = feature_df[[self.key, self.fts]].copy()
        f.columns = ["key", "when"]
        f["when"] = pd.to_datetime(f["when"], utc=True)
        f["j"] = range(len(f))
        if self.created:
            f["tie"] = pd.to_datetime(feature_df[self.created], utc=True).values
            f = f.sort_values(["when", "tie", "j"]).drop(columns="tie")
        else:
            f = f.sort_values(["when", "j"])
        return e.sort_values("when"), f


def point_in_time_join(entity_df, feature_df, *, entity_key="user_id",
                       timestamp_col="event_timestamp", feature_timestamp_col="event_timestamp",
                       created_timestamp_col=None, ttl=None, feature_names=None):
    helper = _Join(entity_key, timestamp_col, feature_timestamp_col, created_timestamp_col)
    e, f = helper.frames(entity_df, feature_df)
    hit = pd.merge_asof(e, f, on="when", by="key", tolerance=ttl or None)
    hit = hit.set_index("i").sort_index()
    wanted = feature_names or [x for x in feature_df.columns
                               if x not in (entity_key, feature_timestamp_col, created_timestamp_col)]
    taken = feature_df[wanted].iloc[hit["j"].fillna(0).astype(int)].reset_index(drop=True)
    taken[hit["j"].isna().to_numpy()] = None
    taken.index = entity_df.index
    return pd.concat([entity_df, taken], axis=1)
