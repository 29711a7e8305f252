"""Grading children are forked; DuckDB (under Feast's duckdb store) is not fork-safe."""

from __future__ import annotations

import pandas as pd
from feast import FeatureStore

from grader.grading.child import grade_in_child
from grader.grading.options import GradingOptions
from grader.sandbox.bubblewrap import Limits


def test_a_child_grades_after_the_parent_ran_feast_duckdb_queries(lab, tmp_path):
    # The parent's ibis/DuckDB connection has worker threads the child does not inherit:
    # without `_forget_inherited_engines` the child's Feast oracle query waits forever.
    store = FeatureStore(repo_path=str(lab.root / "feature_repo"))
    entities = pd.DataFrame(
        {"user_id": [1, 2, 3], "event_timestamp": pd.Timestamp("2024-02-01", tz="UTC")}
    )
    frame = store.get_historical_features(
        entity_df=entities, features=["user_activity:daily_spend"]
    ).to_df()
    assert len(frame) == 3
    options = GradingOptions(
        limits=Limits(call_timeout_s=60),
        submission_timeout_s=120,
        cache_dir=tmp_path / "fresh-cache",  # the oracle is computed in the child
    )
    card = grade_in_child(lab, lab.root / "solutions", slugs=["ex2_pit_join"], options=options)
    assert card.status == "graded", card.error
    assert card.score == card.max_score == 30.0
