"""My point-in-time join."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd


def _as_utc(values: pd.Series) -> pd.Series:
    out = pd.to_datetime(values, utc=True)
    return out.astype("datetime64[ns, UTC]")


def _check(frame: pd.DataFrame, cols: list, label: str) -> None:
    for c in cols:
        if c not in frame.columns:
            raise ValueError(f"{label} is missing {c}")


def point_in_time_join(
    entity_df,
    feature_df,
    *,
    entity_key="user_id",
    timestamp_col="event_timestamp",
    feature_timestamp_col="event_timestamp",
    created_timestamp_col=None,
    ttl=None,
    feature_names=None,
):
    _check(entity_df, [entity_key, timestamp_col], "entity_df")
    _check(feature_df, [entity_key, feature_timestamp_col], "feature_df")
    if ttl is not None and ttl < timedelta(0):
        raise ValueError("ttl must not be negative")
    if feature_names is None:
        skip = {entity_key, feature_timestamp_col, created_timestamp_col}
        feature_names = [c for c in feature_df.columns if c not in skip]
    clash = [c for c in feature_names if c in entity_df.columns]
    if clash:
        raise ValueError(f"feature {clash[0]} collides with an entity column")
    left = pd.DataFrame({"t": _as_utc(entity_df[timestamp_col]), "k": entity_df[entity_key]})
    left["position"] = range(len(left))
    right = pd.DataFrame({"t": _as_utc(feature_df[feature_timestamp_col]),
                          "k": feature_df[entity_key]})
    right["src"] = range(len(right))
    sort_cols = ["t"]
    if created_timestamp_col:
        right["c"] = _as_utc(feature_df[created_timestamp_col])
        sort_cols.append("c")
    right = right.sort_values(sort_cols + ["src"])
    joined = pd.merge_asof(
        left.sort_values("t"), right.drop(columns=[c for c in ["c"] if c in right]),
        on="t", by="k", direction="backward",
        tolerance=pd.Timedelta(ttl) if ttl else None,
    ).sort_values("position")
    picked = feature_df[feature_names].reset_index(drop=True).reindex(
        joined["src"].fillna(-1).astype(int).to_numpy()
    )
    picked.index = entity_df.index
    return pd.concat([entity_df, picked], axis=1)
