"""A second, differently written correct answer to ex1: definitions generated from tables.

Written from the README and the stub's docstring alone, to prove the suites judge the
registry and the training frames, not one way of writing them (tests/test_alt_solutions.py
grades it and wants full marks). The views are generated from one table per source file,
the service selects features by projection, and the on-demand ratio uses numpy.
"""

from __future__ import annotations

import pathlib
from datetime import timedelta

SERVICE_NAME = "fraud_detection_v1"
OWNER = "risk-team@example.com"

#: file -> (entity name, join key, view name, ttl, {feature: "int" | "float"})
TABLES = {
    "user_txn_stats.parquet": (
        "card_holder",
        "user_id",
        "card_holder_activity",
        timedelta(days=1),
        {
            "txn_count_1h": "int",
            "txn_count_24h": "int",
            "distinct_merchants_24h": "int",
            "txn_amount_sum_1h": "float",
            "avg_amount_7d": "float",
        },
    ),
    "merchant_stats.parquet": (
        "shop",
        "merchant_id",
        "shop_risk",
        timedelta(days=10),
        {
            "chargeback_rate_30d": "float",
            "avg_ticket_30d": "float",
            "txn_count_7d": "int",
            "is_high_risk": "int",
        },
    ),
}


def build_definitions(data_dir: pathlib.Path) -> list:
    """Return the Feast objects of the fraud model, ready for `FeatureStore.apply`."""
    from feast import Entity, FeatureService, FeatureView, Field, FileSource, RequestSource
    from feast.on_demand_feature_view import on_demand_feature_view
    from feast.types import Float64, Int64
    from feast.value_type import ValueType

    kinds = {"int": Int64, "float": Float64}
    folder = pathlib.Path(data_dir).resolve() / "fraud"
    entities, sources, views = [], [], {}
    for file_name, (entity_name, key, view_name, ttl, features) in TABLES.items():
        entity = Entity(name=entity_name, join_keys=[key], value_type=ValueType.INT64)
        source = FileSource(
            name=f"{view_name}_file",
            path=str(folder / file_name),
            timestamp_field="event_timestamp",
            created_timestamp_column="created",
        )
        views[view_name] = FeatureView(
            name=view_name,
            entities=[entity],
            ttl=ttl,
            schema=[Field(name=n, dtype=kinds[k]) for n, k in features.items()],
            source=source,
            online=True,
            description=f"Snapshot statistics from {file_name}.",
            tags={"owner": OWNER},
            owner=OWNER,
        )
        entities.append(entity)
        sources.append(source)

    request = RequestSource(name="payment", schema=[Field(name="amount", dtype=Float64)])
    holder = views["card_holder_activity"]

    @on_demand_feature_view(
        sources=[request, holder[["avg_amount_7d"]]],
        schema=[Field(name="amount_to_avg_7d_ratio", dtype=Float64)],
        mode="pandas",
    )
    def transaction_risk(inputs):
        import numpy as np
        import pandas as pd

        amount = inputs["amount"].to_numpy(dtype="float64", na_value=np.nan)
        mean = inputs["avg_amount_7d"].to_numpy(dtype="float64", na_value=np.nan)
        usable = np.isfinite(mean) & (mean != 0)
        ratio = np.divide(amount, mean, out=np.full(len(amount), np.nan), where=usable)
        return pd.DataFrame({"amount_to_avg_7d_ratio": ratio})

    service = FeatureService(
        name=SERVICE_NAME,
        features=[view[[f.name for f in view.features]] for view in views.values()],
    )
    return [*entities, *sources, *views.values(), request, transaction_risk, service]
