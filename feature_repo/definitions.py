"""Definitions of the reference repo: the lesson's user activity features.

Order follows Feast's local template: entity, source, view, service. The source path is
absolute, computed from this file's location, so the repo works from any current directory
(the duckdb offline store reads relative paths from the process's cwd, not the repo).
"""

from datetime import timedelta
from pathlib import Path

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.types import Float32, Int64

DATA_DIR = Path(__file__).resolve().parent.parent / "data"

user = Entity(
    name="user_id",
    join_keys=["user_id"],
    value_type=ValueType.INT64,
    description="A registered user of the shop.",
)

user_activity_source = FileSource(
    name="user_activity_source",
    path=str(DATA_DIR / "user_features.parquet"),
    timestamp_field="event_timestamp",
    description="Daily activity summary per user, written by the nightly batch job.",
)

user_activity_fv = FeatureView(
    name="user_activity",
    entities=[user],
    # A daily feature older than a week says little about the user today: serve nothing.
    ttl=timedelta(days=7),
    schema=[
        Field(name="daily_spend", dtype=Float32, description="Spend that day, in dollars."),
        Field(name="num_sessions", dtype=Int64, description="Sessions started that day."),
        Field(
            name="avg_session_duration_min",
            dtype=Float32,
            description="Mean session length that day, in minutes.",
        ),
        Field(name="items_viewed", dtype=Int64, description="Product pages viewed that day."),
        Field(name="items_purchased", dtype=Int64, description="Items bought that day."),
        Field(name="is_premium", dtype=Int64, description="1 if a premium member that day."),
    ],
    source=user_activity_source,
    online=True,
    description="Daily engagement and spend of each user, for churn and recommendation models.",
    tags={"owner": "feature-store-lab@example.com", "team": "growth"},
)

user_activity_v1 = FeatureService(
    name="user_activity_v1",
    features=[user_activity_fv],
    description="Every user activity feature, version 1.",
)
