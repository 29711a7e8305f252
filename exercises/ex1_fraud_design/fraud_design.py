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
    # TODO: import from feast inside the function: importing feast takes seconds.
    # TODO: two entities, join keys user_id and merchant_id, value_type=ValueType.INT64.
    # TODO: two FileSources: absolute paths, timestamp_field and created_timestamp_column.
    # TODO: a user view (5 features), a merchant view (4): types, ttl, online, description, owner.
    # TODO: (bonus) a RequestSource named e.g. transaction_request with the Float64 field `amount`.
    # TODO: (bonus) @on_demand_feature_view transaction_risk computing amount_to_avg_7d_ratio.
    # TODO: the FeatureService fraud_detection_v1 holding both views (all nine features).
    raise NotImplementedError("build_definitions: define the Feast objects (see README.md)")
