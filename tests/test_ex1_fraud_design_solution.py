"""The reference solution of ex1_fraud_design meets every graded criterion of SPEC 3 (1 to 9).

The objects are applied into an EMPTY temp repo (SQLite online, duckdb offline, registry in
the temp folder) and every check reads them back from the registry, as the grader does.
Criterion 9 compares Feast's training frame with an independent pandas point-in-time join.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SLUG = "ex1_fraud_design"
USER_FEATURES = {
    "txn_count_1h": "int",
    "txn_count_24h": "int",
    "distinct_merchants_24h": "int",
    "txn_amount_sum_1h": "float",
    "avg_amount_7d": "float",
}
MERCHANT_FEATURES = {
    "chargeback_rate_30d": "float",
    "avg_ticket_30d": "float",
    "txn_count_7d": "int",
    "is_high_risk": "int",
}
SOURCE_FILES = {"user_txn_stats.parquet": "user_id", "merchant_stats.parquet": "merchant_id"}
RATIO = "amount_to_avg_7d_ratio"
T0 = pd.Timestamp("2024-01-01", tz="UTC")

CONFIG = """\
project: fraud_lab
provider: local
registry: registry.db
online_store:
  type: sqlite
  path: online_store.db
offline_store:
  type: duckdb
entity_key_serialization_version: 3
"""


def empty_repo(folder: Path) -> Path:
    """A Feast repo folder holding nothing but its feature_store.yaml."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "feature_store.yaml").write_text(CONFIG, encoding="utf-8")
    return folder


def point_in_time(
    entity: pd.DataFrame, stats: pd.DataFrame, key: str, ttl: timedelta, features: list[str]
) -> pd.DataFrame:
    """Independent PIT join: the latest snapshot at or before each row (ties: latest `created`)
    at most `ttl` old (bound inclusive), else missing. Returns the features, one row per row."""
    current = stats.sort_values([key, "event_timestamp", "created"], kind="stable")
    current = current.drop_duplicates([key, "event_timestamp"], keep="last")
    right = current.rename(columns={"event_timestamp": "_feature_ts"})[
        [key, "_feature_ts", *features]
    ].sort_values("_feature_ts", kind="stable")
    left = entity[[key, "event_timestamp"]].assign(_row=np.arange(len(entity)))
    joined = pd.merge_asof(
        left.sort_values("event_timestamp", kind="stable"),
        right,
        left_on="event_timestamp",
        right_on="_feature_ts",
        by=key,
        direction="backward",
        allow_exact_matches=True,
    ).sort_values("_row")
    out = joined[features].astype("float64")
    if ttl:  # a ttl of 0 or None sets no lower bound
        too_old = (joined["event_timestamp"] - joined["_feature_ts"]) > pd.Timedelta(ttl)
        out.loc[too_old.to_numpy()] = np.nan
    return out.set_axis(entity.index)


def assert_same(actual: pd.DataFrame, expected: pd.DataFrame, columns, what: str) -> None:
    for column in columns:
        np.testing.assert_allclose(
            actual[column].astype("float64").to_numpy(),
            expected[column].astype("float64").to_numpy(),
            rtol=1e-6,
            equal_nan=True,
            err_msg=f"{what}: column {column}",
        )


@pytest.fixture(scope="module")
def fraud_design(solution):
    return solution(SLUG)


@pytest.fixture(scope="module")
def applied(fraud_design, data_dir, tmp_path_factory):
    """(objects, store) after applying the solution's objects into an empty repo."""
    from feast import FeatureStore

    repo = empty_repo(tmp_path_factory.mktemp("ex1_repo"))
    assert sorted(p.name for p in repo.iterdir()) == ["feature_store.yaml"]
    objects = fraud_design.build_definitions(data_dir)
    FeatureStore(repo_path=str(repo)).apply(objects)
    # A fresh store reads everything back from the registry file.
    return objects, FeatureStore(repo_path=str(repo))


@pytest.fixture(scope="module")
def store(applied):
    return applied[1]


@pytest.fixture(scope="module")
def views(store):
    return {view.name: view for view in store.list_feature_views()}


@pytest.fixture(scope="module")
def view_of_file(views):
    """Source file name -> the (single) registered view reading it."""
    found = {}
    for view in views.values():
        found.setdefault(Path(view.batch_source.path).name, []).append(view)
    assert sorted(found) == sorted(SOURCE_FILES)
    assert all(len(v) == 1 for v in found.values()), found
    return {name: v[0] for name, v in found.items()}


@pytest.fixture(scope="module")
def fraud_frames(data_dir):
    fraud = data_dir / "fraud"
    return {
        "transactions": pd.read_parquet(fraud / "transactions.parquet"),
        "user_txn_stats.parquet": pd.read_parquet(fraud / "user_txn_stats.parquet"),
        "merchant_stats.parquet": pd.read_parquet(fraud / "merchant_stats.parquet"),
    }


@pytest.fixture(scope="module")
def entity_df(fraud_frames):
    """5,000 sampled transactions plus rows that probe restatements, TTL edges and gaps."""
    txns = fraud_frames["transactions"]
    rng = np.random.default_rng(7)
    sample = txns.sample(5000, random_state=7)
    extra_id = iter(range(10_000_000, 20_000_000))

    def rows(user_ids, merchant_ids, stamps, kind):
        n = len(user_ids)
        return pd.DataFrame(
            {
                "transaction_id": [next(extra_id) for _ in range(n)],
                "user_id": np.asarray(user_ids, dtype=np.int64),
                "merchant_id": np.asarray(merchant_ids, dtype=np.int64),
                "amount": np.round(rng.lognormal(3.4, 0.6, n), 2),
                "event_timestamp": pd.DatetimeIndex(stamps).tz_convert("UTC"),
                "is_fraud": np.zeros(n, dtype=np.int64),
                "kind": kind,
            }
        )

    stats = fraud_frames["user_txn_stats.parquet"]
    restated = stats[stats.duplicated(["user_id", "event_timestamp"], keep="last")].head(50)
    users = rng.integers(1, 1001, 20)
    merchants = rng.integers(1, 201, 20)
    end = pd.Timestamp("2024-03-31", tz="UTC")
    probes = [
        sample.assign(kind="sample"),
        # Twins: same key and timestamp, both rows must survive.
        sample.head(10).assign(transaction_id=[next(extra_id) for _ in range(10)], kind="twin"),
        rows(
            restated["user_id"],
            rng.integers(1, 201, len(restated)),
            restated["event_timestamp"] + pd.Timedelta(minutes=30),
            "restated",
        ),
    ]
    for offset, kind in [
        (pd.Timedelta(hours=1, minutes=30), "after_end_1h30"),
        (pd.Timedelta(hours=2), "after_end_2h"),
        (pd.Timedelta(hours=2, seconds=1), "after_end_2h_1s"),
        (pd.Timedelta(days=2), "after_end_2d"),
        (pd.Timedelta(days=2, seconds=1), "after_end_2d_1s"),
        (pd.Timedelta(days=-1), "before_start"),
    ]:
        base = T0 if kind == "before_start" else end
        probes.append(rows(users, merchants, [base + offset] * len(users), kind))
    frame = pd.concat(probes, ignore_index=True)
    return frame.sample(frac=1.0, random_state=3, ignore_index=True)


@pytest.fixture(scope="module")
def expected(entity_df, fraud_frames, view_of_file):
    """The independent point-in-time join under the solution's registered TTLs."""
    user_view = view_of_file["user_txn_stats.parquet"]
    merchant_view = view_of_file["merchant_stats.parquet"]
    parts = [
        point_in_time(
            entity_df,
            fraud_frames["user_txn_stats.parquet"],
            "user_id",
            user_view.ttl,
            list(USER_FEATURES),
        ),
        point_in_time(
            entity_df,
            fraud_frames["merchant_stats.parquet"],
            "merchant_id",
            merchant_view.ttl,
            list(MERCHANT_FEATURES),
        ),
    ]
    return pd.concat([entity_df, *parts], axis=1)


@pytest.fixture(scope="module")
def training(store, entity_df):
    service = store.get_feature_service("fraud_detection_v1")
    query = entity_df.drop(columns=["kind"])
    return store.get_historical_features(entity_df=query, features=service).to_df()


# Criterion 1 ------------------------------------------------------------------------------


def test_the_objects_apply_into_an_empty_repo_and_fill_its_registry(applied, store):
    objects, _ = applied
    assert isinstance(objects, list) and objects
    assert {e.name for e in store.list_entities()} >= {"user_id", "merchant_id"}
    assert len(store.list_feature_views()) == 2
    assert [s.name for s in store.list_feature_services()] == ["fraud_detection_v1"]
    assert [o.name for o in store.list_on_demand_feature_views()] == ["transaction_risk"]


def test_build_definitions_registers_absolute_paths_even_from_a_relative_data_dir(
    fraud_design, data_dir, monkeypatch
):
    from feast import FileSource

    monkeypatch.chdir(data_dir.parent)
    objects = fraud_design.build_definitions(Path(data_dir.name))
    paths = sorted(o.path for o in objects if isinstance(o, FileSource))
    assert paths == sorted(str(data_dir.resolve() / "fraud" / name) for name in SOURCE_FILES)


# Criterion 2 ------------------------------------------------------------------------------


def test_entities_join_on_user_id_and_merchant_id_as_int64(store):
    from feast import ValueType

    entities = {e.join_key: e for e in store.list_entities()}
    assert sorted(entities) == ["merchant_id", "user_id"]
    for entity in entities.values():
        assert entity.value_type == ValueType.INT64, entity.name


# Criterion 3 ------------------------------------------------------------------------------


def test_every_view_reads_a_fraud_parquet_file_source_with_event_and_created_timestamps(
    views, data_dir
):
    from feast import FileSource

    for view in views.values():
        source = view.batch_source
        assert isinstance(source, FileSource), view.name
        path = Path(source.path)
        assert path.is_absolute(), f"{view.name} reads a relative path {path}"
        assert path.name in SOURCE_FILES
        assert path.resolve() == (data_dir / "fraud" / path.name).resolve()
        assert source.timestamp_field == "event_timestamp", view.name
        assert source.created_timestamp_column == "created", view.name


# Criterion 4 ------------------------------------------------------------------------------


def test_views_expose_the_nine_features_with_their_types_keyed_by_their_entity(view_of_file):
    from feast.types import Float32, Float64, Int64

    allowed = {"int": {Int64}, "float": {Float32, Float64}}
    for file_name, features in [
        ("user_txn_stats.parquet", USER_FEATURES),
        ("merchant_stats.parquet", MERCHANT_FEATURES),
    ]:
        view = view_of_file[file_name]
        assert [c.name for c in view.entity_columns] == [SOURCE_FILES[file_name]], view.name
        dtypes = {field.name: field.dtype for field in view.features}
        assert sorted(dtypes) == sorted(features), view.name
        for name, kind in features.items():
            assert dtypes[name] in allowed[kind], f"{name} is {dtypes[name]}"


# Criterion 5 ------------------------------------------------------------------------------


def test_ttls_fit_how_often_the_snapshots_are_written(view_of_file):
    user_ttl = view_of_file["user_txn_stats.parquet"].ttl
    merchant_ttl = view_of_file["merchant_stats.parquet"].ttl
    assert timedelta(hours=1) <= user_ttl <= timedelta(days=2)
    assert timedelta(days=1) <= merchant_ttl <= timedelta(days=30)


# Criterion 6 ------------------------------------------------------------------------------


def test_every_view_is_online_described_and_owned(views, store):
    for view in views.values():
        assert view.online is True, view.name
        assert view.description.strip(), view.name
        assert view.tags.get("owner", "").strip(), view.name
    for odfv in store.list_on_demand_feature_views():
        assert odfv.description.strip() and odfv.tags.get("owner", "").strip()


# Criterion 7 ------------------------------------------------------------------------------


def test_fraud_detection_v1_serves_all_nine_features(store, view_of_file):
    service = store.get_feature_service("fraud_detection_v1")
    served = {
        (projection.name, field.name)
        for projection in service.feature_view_projections
        for field in projection.features
    }
    user_view = view_of_file["user_txn_stats.parquet"].name
    merchant_view = view_of_file["merchant_stats.parquet"].name
    assert served == {(user_view, f) for f in USER_FEATURES} | {
        (merchant_view, f) for f in MERCHANT_FEATURES
    }


# Criterion 8 (bonus) ----------------------------------------------------------------------


def test_transaction_risk_reads_amount_from_the_request_and_outputs_the_ratio(store):
    odfv = store.get_on_demand_feature_view("transaction_risk")
    request_fields = {
        field.name for source in odfv.source_request_sources.values() for field in source.schema
    }
    assert request_fields == {"amount"}
    assert [field.name for field in odfv.features] == [RATIO]
    inputs = {
        field.name for p in odfv.source_feature_view_projections.values() for field in p.features
    }
    assert "avg_amount_7d" in inputs


def test_transaction_risk_in_training_equals_amount_over_the_7_day_average(
    store, entity_df, expected
):
    query = entity_df.drop(columns=["kind"])
    frame = store.get_historical_features(
        entity_df=query, features=[f"transaction_risk:{RATIO}"]
    ).to_df()
    frame = frame.sort_values("transaction_id", ignore_index=True)
    want = expected.sort_values("transaction_id", ignore_index=True)
    average = want["avg_amount_7d"]
    want_ratio = (want["amount"] / average.where(average != 0)).to_frame(RATIO)
    assert len(frame) == len(want)
    assert want_ratio[RATIO].notna().sum() > 4000 and want_ratio[RATIO].isna().any()
    assert_same(frame, want_ratio, [RATIO], "transaction_risk")


@pytest.fixture(scope="module")
def tiny_store(fraud_design, tmp_path_factory):
    """Three users whose 7-day average is 50, 0 and missing; applied and materialized."""
    from feast import FeatureStore

    root = tmp_path_factory.mktemp("ex1_tiny")
    (root / "fraud").mkdir()
    created = T0 + pd.Timedelta(minutes=5)
    pd.DataFrame(
        {
            "user_id": np.array([1, 2, 3], dtype=np.int64),
            "event_timestamp": [T0] * 3,
            "created": [created] * 3,
            "txn_count_1h": np.array([1, 0, 0], dtype=np.int64),
            "txn_count_24h": np.array([4, 2, 0], dtype=np.int64),
            "distinct_merchants_24h": np.array([2, 1, 0], dtype=np.int64),
            "txn_amount_sum_1h": [50.0, 0.0, 0.0],
            "avg_amount_7d": [50.0, 0.0, np.nan],
        }
    ).to_parquet(root / "fraud" / "user_txn_stats.parquet", index=False)
    pd.DataFrame(
        {
            "merchant_id": np.array([1], dtype=np.int64),
            "event_timestamp": [T0],
            "created": [created],
            "chargeback_rate_30d": [0.0],
            "avg_ticket_30d": [40.0],
            "txn_count_7d": np.array([3], dtype=np.int64),
            "is_high_risk": np.array([0], dtype=np.int64),
        }
    ).to_parquet(root / "fraud" / "merchant_stats.parquet", index=False)
    repo = empty_repo(root / "repo")
    FeatureStore(repo_path=str(repo)).apply(fraud_design.build_definitions(root))
    store = FeatureStore(repo_path=str(repo))
    store.materialize(T0.to_pydatetime(), (T0 + pd.Timedelta(days=1)).to_pydatetime())
    return store


def test_the_ratio_is_missing_when_the_average_is_missing_or_zero_in_training(tiny_store):
    entity = pd.DataFrame(
        {
            "user_id": np.array([1, 2, 3, 4], dtype=np.int64),
            "merchant_id": np.ones(4, dtype=np.int64),
            "amount": [120.0, 120.0, 120.0, 120.0],
            "event_timestamp": [T0 + pd.Timedelta(minutes=30)] * 4,
        }
    )
    frame = tiny_store.get_historical_features(
        entity_df=entity, features=[f"transaction_risk:{RATIO}"]
    ).to_df()
    ratio = frame.sort_values("user_id")[RATIO].astype("float64").to_numpy()
    np.testing.assert_allclose(ratio, [2.4, np.nan, np.nan, np.nan], equal_nan=True)


def test_the_ratio_is_served_online_from_the_request_amount(tiny_store):
    response = tiny_store.get_online_features(
        features=[f"transaction_risk:{RATIO}"],
        entity_rows=[{"user_id": u, "amount": 75.0} for u in (1, 2, 3, 4)],
    ).to_dict()
    ratio = [np.nan if v is None else float(v) for v in response[RATIO]]
    np.testing.assert_allclose(ratio, [1.5, np.nan, np.nan, np.nan], equal_nan=True)


# Criterion 9 ------------------------------------------------------------------------------


def test_the_probe_rows_exercise_restatements_and_ttl_edges(entity_df, expected, fraud_frames):
    stats = fraud_frames["user_txn_stats.parquet"]
    latest = stats.drop_duplicates(["user_id", "event_timestamp"], keep="last")
    earliest = stats.drop_duplicates(["user_id", "event_timestamp"], keep="first")
    probe = expected[expected["kind"] == "restated"]
    keys = pd.DataFrame(
        {"user_id": probe["user_id"], "event_timestamp": probe["event_timestamp"].dt.floor("h")}
    )
    want = keys.merge(latest, on=["user_id", "event_timestamp"], how="left")["txn_count_1h"]
    stale = keys.merge(earliest, on=["user_id", "event_timestamp"], how="left")["txn_count_1h"]
    assert (probe["txn_count_1h"].to_numpy() == want.to_numpy()).all()
    assert (probe["txn_count_1h"].to_numpy() != stale.to_numpy()).all()

    by_kind = expected.groupby("kind")
    assert by_kind["txn_count_1h"].count()["after_end_2h"] == 20  # exactly ttl old: kept
    assert by_kind["txn_count_1h"].count()["after_end_2h_1s"] == 0  # a second older: missing
    assert by_kind["txn_count_7d"].count()["after_end_2d"] == 20
    assert by_kind["txn_count_7d"].count()["after_end_2d_1s"] == 0
    assert by_kind["txn_count_1h"].count()["before_start"] == 0


def test_historical_features_through_the_service_equal_an_independent_point_in_time_join(
    training, expected
):
    got = training.sort_values("transaction_id", ignore_index=True)
    want = expected.sort_values("transaction_id", ignore_index=True)
    assert len(got) == len(want), "every entity row must come back exactly once"
    assert (got["transaction_id"].to_numpy() == want["transaction_id"].to_numpy()).all()
    features = [*USER_FEATURES, *MERCHANT_FEATURES]
    assert set(features) <= set(got.columns)
    assert_same(got, want, features, "fraud_detection_v1")
    assert want[features].notna().all(axis=1).sum() > 4900
