"""ex1_fraud_design, hidden tests: entity keying, absolute paths, the bonus view, and training
frames that are point-in-time correct (criterion 9).

Expected values come from an independent `merge_asof` point-in-time join on the trusted side,
under the TTLs the submission registered, cached per suite and data version.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from grader.harness.fraud import (
    APPLIED,
    FEATURES_OF_FILE,
    KEY_OF_FILE,
    MERCHANT_FILE,
    ODFV,
    RATIO,
    SERVICE,
    USER_FILE,
    applied_registry,
    training_frame,
)
from grader.sandbox.proxy import StudentError

ENTITY_COLUMNS = ["transaction_id", "user_id", "merchant_id", "amount", "event_timestamp"]
PROBE_ID = 10_000_000
T0 = pd.Timestamp("2024-01-01", tz="UTC")
RTOL = 1e-6
CACHE_VERSION = "1"
SAMPLE = 10_000
"""Transactions (a fixed sample) in the criterion-9 comparison, besides the probe rows."""


@pytest.fixture(scope="module")
def data_dir(grading) -> Path:
    """The kit's data folder (the shared session-scoped fixture cannot use `grading`)."""
    return grading.kit.data_dir


@pytest.fixture(scope="module")
def registry(student, data_dir) -> dict:
    return applied_registry(student, data_dir, "repo")


def views_over(registry: dict) -> list[dict]:
    views = registry["feature_views"]
    assert views, (
        f"{APPLIED}: the registry holds no feature view, expected one over {USER_FILE} and "
        f"one over {MERCHANT_FILE}."
    )
    return views


def call_failed(what: str, exc: StudentError) -> AssertionError:
    if exc.not_implemented:
        return AssertionError("Not done yet: build_definitions still raises NotImplementedError.")
    where = f" ({exc.where})" if exc.where else ""
    return AssertionError(f"{what} failed with {exc.type_name}: {exc.message}{where}")


# Criterion 3: absolute paths ---------------------------------------------------------------


@pytest.mark.points(1)
@pytest.mark.task(taskno=3)
def test_source_paths_are_absolute_even_when_data_dir_is_relative(student, data_dir):
    relative = os.path.relpath(data_dir, student.workdir)
    summary = applied_registry(student, relative, "repo_relative", cwd=student.workdir)
    for view in views_over(summary):
        uri = view["source"]["uri"]
        wanted = (data_dir / "fraud" / view["file"]).resolve()
        assert Path(uri).is_absolute() and Path(uri).resolve() == wanted, (
            f"Called build_definitions(Path({relative!r})) (a relative data_dir) from the "
            f"folder it is relative to: feature view {view['name']!r} reads {uri!r}, expected "
            f"the absolute path {str(wanted)!r}, because the duckdb offline store later reads a "
            "relative path from whatever the current directory is then. Resolve data_dir first."
        )


# Criterion 4: keyed by the right entity ----------------------------------------------------


@pytest.mark.points(1)
@pytest.mark.task(taskno=2)
def test_user_features_are_keyed_by_user_id_and_merchant_features_by_merchant_id(registry):
    owner = {f: file for file, fs in FEATURES_OF_FILE.items() for f in fs}
    seen = set()
    for view in views_over(registry):
        for feature in view["features"]:
            if feature not in owner:
                continue
            seen.add(feature)
            key = KEY_OF_FILE[owner[feature]]
            assert view["join_keys"] == [key], (
                f"{APPLIED}: feature view {view['name']!r} holds {feature!r} but is keyed by "
                f"{view['join_keys'] or 'no entity'}, expected exactly [{key!r}], because "
                f"{feature} describes one {key.removesuffix('_id')} and its file has no other key."
            )
            assert view["file"] == owner[feature], (
                f"{APPLIED}: feature view {view['name']!r} holds {feature!r} but reads "
                f"{view['file']}, expected {owner[feature]}, where that column lives."
            )
    missing = sorted(set(owner) - seen)
    assert not missing, f"{APPLIED}: no feature view holds {missing}, so they cannot be checked."


# Criterion 9: point-in-time correct training frames -----------------------------------------


def current_snapshots(stats: pd.DataFrame, key: str) -> pd.DataFrame:
    """One row per (key, event_timestamp): the latest `created` wins; sorted for merge_asof."""
    current = stats.sort_values([key, "event_timestamp", "created"], kind="stable")
    current = current.drop_duplicates([key, "event_timestamp"], keep="last")
    return current.rename(columns={"event_timestamp": "_fts"}).sort_values("_fts", kind="stable")


def pit_join(entity: pd.DataFrame, current: pd.DataFrame, key: str, ttl_s: float, features):
    """Independent point-in-time join: per entity row the latest snapshot of the same key at or
    before its timestamp, at most `ttl_s` old (0: no limit), else missing. Returns the
    features (float64) and `_fts`, the matched snapshot time, in entity row order."""
    left = pd.DataFrame(
        {
            key: entity[key].to_numpy(),
            "_ts": pd.to_datetime(entity["event_timestamp"], utc=True),
            "_row": np.arange(len(entity)),
        }
    )
    joined = pd.merge_asof(
        left.sort_values("_ts", kind="stable"),
        current[[key, "_fts", *features]],
        left_on="_ts",
        right_on="_fts",
        by=key,
        direction="backward",
    ).sort_values("_row")
    joined = joined.reset_index(drop=True)
    out = joined[list(features)].astype("float64")
    out["_fts"] = joined["_fts"]
    if ttl_s:
        too_old = (joined["_ts"] - joined["_fts"]) > pd.Timedelta(seconds=ttl_s)
        out.loc[too_old, list(features)] = np.nan
        out["_fts"] = out["_fts"].mask(too_old)
    return out


def view_ttls(registry: dict) -> dict[str, float]:
    """Source file -> the ttl (seconds) of the first view over it holding its features."""
    ttls = {}
    for view in registry["feature_views"]:
        if view["file"] in FEATURES_OF_FILE and view["file"] not in ttls:
            if set(view["features"]) & set(FEATURES_OF_FILE[view["file"]]):
                ttls[view["file"]] = view["ttl_seconds"]
    return ttls


def feature_plan(registry: dict, strict: bool = True) -> dict[str, tuple[str, float]]:
    """Feature -> (its real source file, ttl of the view that serves it in the service).

    `strict`: fail with a learner-facing message when there is nothing to compare."""
    services = {s["name"]: s for s in registry["feature_services"]}
    if not strict and SERVICE not in services:
        return {}
    assert SERVICE in services, (
        f"{APPLIED}: there is no feature service {SERVICE!r}, so no training frame can be built "
        "through it."
    )
    views = {v["name"]: v for v in registry["feature_views"]}
    owner = {f: file for file, fs in FEATURES_OF_FILE.items() for f in fs}
    plan = {}
    for view_name, feature in services[SERVICE]["features"]:
        if feature in owner and view_name in views:
            plan[feature] = (owner[feature], views[view_name]["ttl_seconds"])
    assert plan or not strict, (
        f"{APPLIED}: the service {SERVICE!r} serves none of the nine stats features, so there "
        "is nothing to compare."
    )
    return plan


def build_entity_frame(data_dir: Path, stats: dict, ttls: dict[str, float]) -> pd.DataFrame:
    """A fixed sample of the transactions plus probe rows: twins, restated snapshots, ttl
    edges, unknown keys. (A sample keeps grading quick; the probes hold the hard cases.)"""
    txns = pd.read_parquet(data_dir / "fraud" / "transactions.parquet")
    txns = txns.sample(n=min(SAMPLE, len(txns)), random_state=7).sort_values("transaction_id")
    txns = txns[ENTITY_COLUMNS].assign(kind="transaction")
    rng = np.random.default_rng(2024)
    ids = iter(range(PROBE_ID, PROBE_ID + 1_000_000))

    def rows(users, merchants, stamps, kind: str) -> pd.DataFrame:
        n = len(users)
        return pd.DataFrame(
            {
                "transaction_id": [next(ids) for _ in range(n)],
                "user_id": np.asarray(users, dtype=np.int64),
                "merchant_id": np.asarray(merchants, dtype=np.int64),
                "amount": np.round(rng.lognormal(3.4, 0.6, n), 2),
                "event_timestamp": pd.DatetimeIndex(stamps).tz_convert("UTC"),
                "kind": kind,
            }
        )

    twins = txns.sample(30, random_state=1)
    parts = [txns, twins.assign(transaction_id=[next(ids) for _ in range(30)], kind="twin")]
    user_stats = stats[USER_FILE]
    restated = user_stats[user_stats.duplicated(["user_id", "event_timestamp"], keep=False)]
    restated = restated.drop_duplicates(["user_id", "event_timestamp"]).sample(
        min(300, len(restated)), random_state=2
    )
    after = pd.to_timedelta(rng.integers(0, 50 * 60, len(restated)), unit="s")
    parts.append(
        rows(
            restated["user_id"],
            rng.integers(1, 201, len(restated)),
            restated["event_timestamp"] + after,
            "restated",
        )
    )
    for file_name, frame in stats.items():
        key = KEY_OF_FILE[file_name]
        last = frame.groupby(key)["event_timestamp"].max().sample(20, random_state=3)
        ttl = pd.Timedelta(seconds=ttls.get(file_name) or 0)
        for offset, label in [(ttl, "at_ttl"), (ttl + pd.Timedelta(seconds=1), "past_ttl")]:
            stamps = pd.DatetimeIndex(last.to_numpy()) + offset
            part = rows(rng.integers(1, 1001, 20), rng.integers(1, 201, 20), stamps, "")
            part[key] = last.index.to_numpy(dtype=np.int64)
            parts.append(part.assign(kind=f"{key}_{label}"))
    before = T0 - pd.Timedelta(hours=1)
    parts.append(
        rows(rng.integers(1, 1001, 20), rng.integers(1, 201, 20), [before] * 20, "before_data")
    )
    parts.append(rows([5000] * 10, [999] * 10, [T0 + pd.Timedelta(days=30)] * 10, "unknown"))
    frame = pd.concat(parts, ignore_index=True)
    return frame.sample(frac=1.0, random_state=4, ignore_index=True)


def ratio_ttl(registry: dict, ttls: dict[str, float]) -> float:
    """The ttl of the view that feeds avg_amount_7d into the on-demand ratio."""
    views = {v["name"]: v for v in registry["feature_views"]}
    for odfv in registry["on_demand_feature_views"]:
        if odfv["name"] == ODFV:
            for view_name, feature in odfv["inputs"]:
                if feature == "avg_amount_7d" and view_name in views:
                    return views[view_name]["ttl_seconds"]
    return ttls.get(USER_FILE, 0.0)


@pytest.fixture(scope="module")
def expected(registry, data_dir, grading) -> pd.DataFrame:
    """The entity frame plus the expected features under the submission's own TTLs."""
    plan = feature_plan(registry, strict=False)
    ttls = view_ttls(registry)
    avg_ttl = ratio_ttl(registry, ttls)
    spec = json.dumps([sorted(plan.items()), sorted(ttls.items()), avg_ttl, CACHE_VERSION])
    name = "ex1_expected_" + hashlib.sha256(spec.encode()).hexdigest()[:16] + ".parquet"
    cached = grading.cache_path(name)
    if cached.is_file():
        return pd.read_parquet(cached)
    stats = {f: pd.read_parquet(data_dir / "fraud" / f) for f in FEATURES_OF_FILE}
    entity = build_entity_frame(data_dir, stats, ttls)
    current = {f: current_snapshots(frame, KEY_OF_FILE[f]) for f, frame in stats.items()}
    out = entity.copy()
    groups: dict[tuple[str, float], list[str]] = {}
    for feature, (file_name, ttl) in plan.items():
        groups.setdefault((file_name, ttl), []).append(feature)
    for (file_name, ttl), features in groups.items():
        joined = pit_join(entity, current[file_name], KEY_OF_FILE[file_name], ttl, features)
        for feature in features:
            out[feature] = joined[feature].to_numpy()
    user = current[USER_FILE]
    out["_avg_for_ratio"] = pit_join(entity, user, "user_id", avg_ttl, ["avg_amount_7d"])[
        "avg_amount_7d"
    ].to_numpy()
    # Rows whose latest user snapshot was restated (two rows share user and timestamp).
    user_stats = stats[USER_FILE]
    pairs = user_stats[user_stats.duplicated(["user_id", "event_timestamp"], keep=False)]
    pairs = pairs[["user_id", "event_timestamp"]].drop_duplicates().assign(_hit=True)
    latest = pit_join(entity, user, "user_id", 0, [])["_fts"]
    matched = pd.DataFrame({"user_id": entity["user_id"], "event_timestamp": latest})
    hit = matched.merge(pairs, how="left", on=["user_id", "event_timestamp"])["_hit"]
    out["restated"] = hit.fillna(False).astype(bool).to_numpy()
    out.to_parquet(cached, index=False)
    return out


@pytest.fixture(scope="module")
def training(student, registry, expected) -> pd.DataFrame:
    feature_plan(registry)
    entity = expected[ENTITY_COLUMNS]
    try:
        frame = training_frame(student, "repo", entity)
    except StudentError as exc:
        raise call_failed(
            f"get_historical_features over {len(entity)} transactions through {SERVICE!r}", exc
        ) from None
    assert isinstance(frame, pd.DataFrame), "The training frame did not come back as a frame."
    return frame


def by_id(frame: pd.DataFrame, expected: pd.DataFrame, what: str) -> pd.DataFrame:
    """`frame` reindexed to the expected transaction ids (every id must be there)."""
    assert "transaction_id" in frame.columns, f"{what}: the frame lost its transaction_id column."
    got = frame.drop_duplicates("transaction_id").set_index("transaction_id")
    missing = expected.loc[~expected["transaction_id"].isin(got.index), "transaction_id"]
    assert missing.empty, (
        f"{what}: {len(missing)} of {len(expected)} entity rows are missing from the result "
        f"(e.g. transaction_id {missing.iloc[0]}), so their values cannot be compared."
    )
    return got.loc[expected["transaction_id"].to_numpy()].reset_index()


def first_mismatch(got: pd.DataFrame, want: pd.DataFrame, features, mask=None):
    """(feature, row position, got, expected, count) of the first differing value, or None."""
    rows = np.ones(len(want), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    for feature in features:
        a = pd.to_numeric(got[feature], errors="coerce").astype("float64").to_numpy()[rows]
        b = want[feature].astype("float64").to_numpy()[rows]
        same = np.isclose(a, b, rtol=RTOL, atol=0.0, equal_nan=True)
        if not same.all():
            i = int(np.flatnonzero(~same)[0])
            return feature, int(np.flatnonzero(rows)[i]), a[i], b[i], int((~same).sum())
    return None


def explain(want: pd.DataFrame, position: int) -> str:
    row = want.iloc[position]
    return (
        f"transaction_id {row['transaction_id']} (user_id {row['user_id']}, merchant_id "
        f"{row['merchant_id']}, at {row['event_timestamp']})"
    )


def value(x: float) -> str:
    return "missing" if pd.isna(x) else f"{x:g}"


@pytest.mark.points(1)
@pytest.mark.task(taskno=9)
def test_historical_features_keep_every_transaction_row(training, expected):
    want = expected["transaction_id"]
    got = training["transaction_id"] if "transaction_id" in training.columns else pd.Series([])
    assert len(training) == len(expected) and sorted(got) == sorted(want), (
        f"Built a training frame through {SERVICE!r} for {len(expected)} entity rows (every "
        "transaction, duplicates, rows before the data and unknown keys included); got "
        f"{len(training)} rows, expected every entity row exactly once, because a training "
        "frame that drops or merges rows drops labelled examples."
    )


@pytest.mark.points(4)
@pytest.mark.task(taskno=9)
def test_historical_features_equal_an_independent_point_in_time_join(training, expected, registry):
    plan = feature_plan(registry)
    what = f"Built a training frame for the sampled transactions through {SERVICE!r}"
    absent = [f for f in plan if f not in training.columns]
    assert not absent, f"{what}: the columns {absent} are missing from it."
    got = by_id(training, expected, what)
    bad = first_mismatch(got, expected, list(plan), mask=~expected["restated"].to_numpy())
    assert bad is None, (
        f"{what}: {bad[4]} rows differ in {bad[0]!r}; for {explain(expected, bad[1])} got "
        f"{value(bad[2])}, expected {value(bad[3])}: the latest snapshot of the same key whose "
        "event_timestamp is at or before the transaction, at most one ttl old (your own ttl). "
        "Check that each view reads the right file with timestamp_field='event_timestamp'."
    )


@pytest.mark.points(1)
@pytest.mark.task(taskno=9)
def test_restated_snapshots_resolve_to_the_latest_created_row(training, expected, registry):
    plan = feature_plan(registry)
    user_features = [f for f, (file, _) in plan.items() if file == USER_FILE]
    restated = expected["restated"].to_numpy()
    assert user_features and restated.any(), (
        f"{APPLIED}: the service {SERVICE!r} serves no user feature, so restated user "
        "snapshots cannot be checked."
    )
    what = "Built a training frame for transactions whose latest user snapshot was restated"
    got = by_id(training, expected, what)
    bad = first_mismatch(got, expected, user_features, mask=restated)
    assert bad is None, (
        f"{what} (two rows share user_id and event_timestamp, the later `created` is the "
        f"corrected one): {bad[4]} of {int(restated.sum())} rows differ in {bad[0]!r}; for "
        f"{explain(expected, bad[1])} got {value(bad[2])}, expected {value(bad[3])} from the "
        "latest-created row. Set created_timestamp_column='created' on the user source."
    )


@pytest.mark.points(1)
@pytest.mark.task(taskno=5)
def test_features_older_than_the_views_ttl_are_missing(training, expected, registry):
    plan = feature_plan(registry)
    what = "Built a training frame for rows exactly one ttl and one ttl + 1 s after a key's last"
    got = by_id(training, expected, f"{what} snapshot")
    for file_name, key in KEY_OF_FILE.items():
        features = [f for f, (file, _) in plan.items() if file == file_name]
        for label in ("at_ttl", "past_ttl"):
            mask = (expected["kind"] == f"{key}_{label}").to_numpy()
            bad = first_mismatch(got, expected, features, mask=mask)
            assert bad is None, (
                f"{what} {key} snapshot (ttl of your {file_name} view): for "
                f"{explain(expected, bad[1])} {bad[0]!r} is {value(bad[2])}, expected "
                f"{value(bad[3])}: a snapshot exactly one ttl old still counts, one a second "
                "older is missing."
            )
    for label in ("before_data", "unknown"):
        mask = (expected["kind"] == label).to_numpy()
        bad = first_mismatch(got, expected, list(plan), mask=mask)
        assert bad is None, (
            f"Built a training frame for rows {label.replace('_', ' ')} keys: for "
            f"{explain(expected, bad[1])} {bad[0]!r} is {value(bad[2])}, expected missing."
        )


# Criterion 8 (bonus): the on-demand ratio ---------------------------------------------------


def the_odfv(registry: dict) -> dict:
    found = {o["name"]: o for o in registry["on_demand_feature_views"]}
    assert ODFV in found, (
        f"{APPLIED}: the registry holds "
        + (f"the on-demand feature views {sorted(found)}" if found else "no on-demand feature view")
        + f", expected one named {ODFV!r} (the bonus task)."
    )
    return found[ODFV]


@pytest.mark.points(1)
@pytest.mark.task(taskno=8)
def test_transaction_risk_in_training_is_the_amount_over_the_7_day_average(
    student, registry, expected
):
    the_odfv(registry)
    entity = expected[ENTITY_COLUMNS]
    what = f"Built a training frame of {ODFV}:{RATIO} for {len(entity)} transactions"
    try:
        # The UDF is student code: built in the student's own worker, judged below.
        frame = student.harness(
            "fraud:historical_here",
            str(student.workdir / "repo"),
            entity,
            [f"{ODFV}:{RATIO}"],
            _timeout=180,
        )
    except StudentError as exc:
        raise call_failed(what, exc) from None
    assert RATIO in frame.columns, f"{what}: the frame has no column {RATIO!r}."
    got = by_id(frame, expected, what)
    average = expected["_avg_for_ratio"]
    want = pd.DataFrame({RATIO: expected["amount"] / average.where(average != 0)})
    bad = first_mismatch(got, pd.concat([expected, want], axis=1), [RATIO])
    assert bad is None, (
        f"{what}: {bad[4]} rows differ; for {explain(expected, bad[1])} (amount "
        f"{expected['amount'].iloc[bad[1]]:g}, avg_amount_7d {value(average.iloc[bad[1]])}) got "
        f"{value(bad[2])}, expected {value(bad[3])} = amount / avg_amount_7d."
    )


TINY_USERS = pd.DataFrame(
    {
        "user_id": np.array([1, 2, 3], dtype=np.int64),
        "event_timestamp": [T0] * 3,
        "created": [T0 + pd.Timedelta(minutes=5)] * 3,
        "txn_count_1h": np.array([1, 0, 0], dtype=np.int64),
        "txn_count_24h": np.array([4, 2, 0], dtype=np.int64),
        "distinct_merchants_24h": np.array([2, 1, 0], dtype=np.int64),
        "txn_amount_sum_1h": [50.0, 0.0, 0.0],
        "avg_amount_7d": [50.0, 0.0, np.nan],
    }
)
TINY_MERCHANTS = pd.DataFrame(
    {
        "merchant_id": np.array([1], dtype=np.int64),
        "event_timestamp": [T0],
        "created": [T0 + pd.Timedelta(minutes=5)],
        "chargeback_rate_30d": [0.0],
        "avg_ticket_30d": [40.0],
        "txn_count_7d": np.array([3], dtype=np.int64),
        "is_high_risk": np.array([0], dtype=np.int64),
    }
)


@pytest.mark.points(1)
@pytest.mark.task(taskno=8)
def test_transaction_risk_is_missing_not_infinite_when_the_average_is_missing_or_zero(
    student, registry
):
    the_odfv(registry)
    tiny = student.workdir / "tiny_data"
    # Written by the worker, never by the trusted side (the folder is the student's).
    student.harness(
        "files:write_parquet",
        str(tiny),
        {f"fraud/{USER_FILE}": TINY_USERS, f"fraud/{MERCHANT_FILE}": TINY_MERCHANTS},
    )
    applied_registry(student, tiny, "repo_tiny")
    entity = pd.DataFrame(
        {
            "transaction_id": np.arange(1, 5, dtype=np.int64),
            "user_id": np.array([1, 2, 3, 4], dtype=np.int64),
            "merchant_id": np.ones(4, dtype=np.int64),
            "amount": [120.0] * 4,
            "event_timestamp": [T0 + pd.Timedelta(minutes=30)] * 4,
        }
    )
    what = (
        f"Built {ODFV}:{RATIO} for amount 120 and users whose avg_amount_7d is 50, 0, missing "
        "and unknown"
    )
    try:
        frame = student.harness(
            "fraud:historical_here",
            str(student.workdir / "repo_tiny"),
            entity,
            [f"{ODFV}:{RATIO}"],
            _timeout=180,
        )
    except StudentError as exc:
        raise call_failed(what, exc) from None
    assert RATIO in frame.columns and len(frame) == 4, f"{what}: got no {RATIO!r} for 4 rows."
    got = pd.to_numeric(frame.sort_values("user_id")[RATIO], errors="coerce").astype("float64")
    shown = [value(x) if np.isfinite(x) or np.isnan(x) else str(x) for x in got]
    ok = np.isclose(got.iloc[0], 2.4, rtol=RTOL) and got.iloc[1:].isna().all()
    assert ok, (
        f"{what}: got {shown}, expected [2.4, missing, missing, missing], because a ratio to "
        "a missing or zero average means nothing: it must be missing (NaN), never inf."
    )
