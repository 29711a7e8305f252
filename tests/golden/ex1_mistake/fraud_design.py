# Golden submission (the grader's own tests): the reference solution with one mistake:
# the user source has no created_timestamp_column, so restated snapshots tie.
"""Exercise 1: design the Feast definitions of a fraud detection model.

A card-fraud model scores every transaction the moment it arrives. To do that it needs
facts about the card holder (how many transactions in the last hour? how much do they
usually spend?) and about the merchant (how often are its payments charged back?). A
batch pipeline already computes those facts as snapshots:

* `data/fraud/user_txn_stats.parquet`: one row per user per hour. Columns `user_id`,
  `event_timestamp`, `created`, `txn_count_1h`, `txn_count_24h`, `distinct_merchants_24h`
  (int64), `txn_amount_sum_1h`, `avg_amount_7d` (float64; missing when the user had no
  transaction in the 7 days before the snapshot).
* `data/fraud/merchant_stats.parquet`: one row per merchant per day. Columns `merchant_id`,
  `event_timestamp`, `created`, `chargeback_rate_30d`, `avg_ticket_30d` (float64),
  `txn_count_7d`, `is_high_risk` (int64).

Each snapshot only uses transactions strictly before its `event_timestamp`, so joining it
to a transaction at or after that time leaks nothing. A few hourly snapshots were restated
later: two rows share `event_timestamp` and only `created` says which one is current.

Your job is to describe this data to Feast, so that the very same definitions produce the
training frame (offline store, point-in-time correct) and the serving vector (online
store): one definition, no training-serving skew. See README.md for the graded tasks.
"""

from __future__ import annotations

import pathlib

#: Name of the feature service the fraud model asks for (fixed by the grader).
SERVICE_NAME = "fraud_detection_v1"

#: Who owns these definitions: the `owner` tag of every view.
OWNER = "fraud-ml@example.com"


def build_definitions(data_dir: pathlib.Path) -> list:
    """Return the Feast objects of the fraud model, ready for `FeatureStore.apply`.

    Parameters
    ----------
    data_dir:
        The kit's data folder (a `pathlib.Path` or a string). The sources live in
        `data_dir / "fraud" / "user_txn_stats.parquet"` and
        `data_dir / "fraud" / "merchant_stats.parquet"`. The files are not read here and do
        not need to exist yet: definitions only describe data.

    Returns
    -------
    list
        Feast objects in dependency order (entities, sources, feature views, on-demand
        view, feature service), such that `store.apply(objects)` into an EMPTY repo
        succeeds with nothing else registered:

        1. Two entities, value type `ValueType.INT64`: one with join key `user_id`, one
           with join key `merchant_id`.
        2. One `FileSource` per parquet file, registered with an ABSOLUTE path (the duckdb
           offline store reads relative paths from the current directory, not the repo),
           `timestamp_field="event_timestamp"` and `created_timestamp_column="created"`
           (`created` decides between restated snapshots that share a timestamp).
        3. A feature view keyed by the user entity over the user source with the five user
           features and a feature view keyed by the merchant entity over the merchant
           source with the four merchant features, under their column names: counts and
           flags `Int64`, amounts and rates `Float32` or `Float64`.
        4. TTLs that match how often the snapshots are written: user view between 1 hour
           and 2 days, merchant view between 1 day and 30 days (never 0, which would serve
           a snapshot of any age).
        5. Every view `online=True`, with a non-empty `description` and an `owner` tag.
        6. A `FeatureService` named `fraud_detection_v1` holding all nine features.
        7. Bonus: an on-demand feature view `transaction_risk` whose sources are a
           `RequestSource` with the field `amount` (the amount of the transaction being
           scored) and the user view, and whose single output `amount_to_avg_7d_ratio` is
           `amount / avg_amount_7d`, missing (NaN) when the average is missing or 0.

    With these, `get_historical_features` over the rows of `transactions.parquet` through
    the service keeps every row and gives it, per view, the snapshot that was current at
    its timestamp (ties: latest `created`), at most one ttl old, never a later one.

    Errors: nothing is raised on purpose; a `data_dir` that is not path-like raises
    `TypeError`, and Feast raises `ValueError` for definitions it cannot accept.
    """
    # Feast costs seconds to import: pay for it only when definitions are built.
    from datetime import timedelta

    from feast import (
        Entity,
        FeatureService,
        FeatureView,
        Field,
        FileSource,
        RequestSource,
        ValueType,
    )
    from feast.on_demand_feature_view import on_demand_feature_view
    from feast.types import Float64, Int64

    fraud_dir = pathlib.Path(data_dir).resolve() / "fraud"

    # Entity named after its join key, as in the reference repo, typed so Feast need not guess.
    user = Entity(
        name="user_id",
        join_keys=["user_id"],
        value_type=ValueType.INT64,
        description="A card holder.",
    )
    merchant = Entity(
        name="merchant_id",
        join_keys=["merchant_id"],
        value_type=ValueType.INT64,
        description="A merchant accepting card payments.",
    )

    # Absolute paths and `created` for restatements: the duckdb store then joins correctly.
    user_stats_source = FileSource(
        name="user_txn_stats_source",
        path=str(fraud_dir / "user_txn_stats.parquet"),
        timestamp_field="event_timestamp",
        description="Hourly per-user transaction statistics from the batch pipeline.",
    )
    merchant_stats_source = FileSource(
        name="merchant_stats_source",
        path=str(fraud_dir / "merchant_stats.parquet"),
        timestamp_field="event_timestamp",
        created_timestamp_column="created",
        description="Daily per-merchant statistics from the batch pipeline.",
    )

    tags = {"owner": OWNER, "team": "risk"}
    # Money in Float64: amounts are cents-exact in the source and the ratio divides them.
    user_fv = FeatureView(
        name="user_txn_stats",
        entities=[user],
        # Hourly snapshots: tolerate one missed run, but a 1-hour count older than that lies.
        ttl=timedelta(hours=2),
        schema=[
            Field(
                name="txn_count_1h",
                dtype=Int64,
                description="Transactions in the hour before the snapshot.",
            ),
            Field(
                name="txn_count_24h",
                dtype=Int64,
                description="Transactions in the 24 hours before the snapshot.",
            ),
            Field(
                name="distinct_merchants_24h",
                dtype=Int64,
                description="Different merchants paid in the 24 hours before the snapshot.",
            ),
            Field(
                name="txn_amount_sum_1h",
                dtype=Float64,
                description="Total spent in the hour before the snapshot, in dollars.",
            ),
            Field(
                name="avg_amount_7d",
                dtype=Float64,
                description="Mean transaction amount over 7 days; missing without transactions.",
            ),
        ],
        source=user_stats_source,
        online=True,
        description="Recent card activity of each user: velocity and typical ticket size.",
        tags=tags,
        owner=OWNER,
    )
    merchant_fv = FeatureView(
        name="merchant_stats",
        entities=[merchant],
        # Daily snapshots of 7- and 30-day windows change slowly: one missed day is harmless.
        ttl=timedelta(days=2),
        schema=[
            Field(
                name="chargeback_rate_30d",
                dtype=Float64,
                description="Share of the merchant's last-30-day transactions that were fraud.",
            ),
            Field(
                name="avg_ticket_30d",
                dtype=Float64,
                description="Mean transaction amount at the merchant over 30 days, in dollars.",
            ),
            Field(
                name="txn_count_7d",
                dtype=Int64,
                description="Transactions at the merchant in the last 7 days.",
            ),
            Field(
                name="is_high_risk",
                dtype=Int64,
                description="1 if the chargeback rate is above 5% on at least 20 transactions.",
            ),
        ],
        source=merchant_stats_source,
        online=True,
        description="Risk profile of each merchant over the last 7 and 30 days.",
        tags=tags,
        owner=OWNER,
    )

    # Request data: known only when the transaction arrives, so it is never stored.
    transaction_request = RequestSource(
        name="transaction_request",
        schema=[Field(name="amount", dtype=Float64, description="Amount being authorised.")],
        description="The transaction being scored.",
    )

    # Pandas mode: one vectorised division over a whole training frame; online it also works.
    @on_demand_feature_view(
        sources=[transaction_request, user_fv],
        schema=[Field(name="amount_to_avg_7d_ratio", dtype=Float64)],
        mode="pandas",
        description="How unusual the amount is for this user: amount / 7-day mean amount.",
        tags=tags,
        owner=OWNER,
    )
    def transaction_risk(inputs):
        import pandas as pd

        amount = pd.to_numeric(inputs["amount"], errors="coerce").astype("float64")
        average = pd.to_numeric(inputs["avg_amount_7d"], errors="coerce").astype("float64")
        ratio = amount / average.where(average != 0)
        return pd.DataFrame({"amount_to_avg_7d_ratio": ratio})

    # The model's contract: exactly the stored features it was trained on, versioned by name.
    fraud_detection_v1 = FeatureService(
        name=SERVICE_NAME,
        features=[user_fv, merchant_fv],
        description="Features of the fraud model, version 1.",
        tags=tags,
        owner=OWNER,
    )

    return [
        user,
        merchant,
        user_stats_source,
        merchant_stats_source,
        user_fv,
        merchant_fv,
        transaction_request,
        transaction_risk,
        fraud_detection_v1,
    ]
