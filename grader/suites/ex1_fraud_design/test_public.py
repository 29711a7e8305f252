"""ex1_fraud_design, public tests: what the registry holds after applying your objects.

The grader calls `build_definitions(data_dir)` in the sandbox, applies the objects it returns
with `FeatureStore.apply` into an EMPTY repo (SQLite online store, duckdb offline store) and
reads the registry file back. The tests judge what ended up in that registry, and the last one
asks Feast for training features of a few transactions through your service.
"""

from __future__ import annotations

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
    USER_FEATURES,
    USER_FILE,
    applied_registry,
    training_frame,
)
from grader.sandbox.proxy import StudentError

ALLOWED_TYPES = {"int": {"INT64"}, "float": {"FLOAT", "DOUBLE"}}
TYPE_WORDS = {"int": "Int64", "float": "Float32 or Float64"}
HOUR, DAY = 3600, 86400
TTL_RANGES = {USER_FILE: (HOUR, 2 * DAY), MERCHANT_FILE: (DAY, 30 * DAY)}
TTL_WORDS = {USER_FILE: "1 hour and 2 days", MERCHANT_FILE: "1 day and 30 days"}


@pytest.fixture(scope="module")
def data_dir(grading) -> Path:
    """The kit's data folder (the shared session-scoped fixture cannot use `grading`)."""
    return grading.kit.data_dir


@pytest.fixture(scope="module")
def registry(student, data_dir) -> dict:
    return applied_registry(student, data_dir, "repo")


def some_views(registry: dict) -> list[dict]:
    views = registry["feature_views"]
    assert views, (
        f"{APPLIED}: the registry holds no feature view, expected one over {USER_FILE} and "
        f"one over {MERCHANT_FILE} (your list held: {', '.join(registry['object_types']) or '-'})."
    )
    return views


def _names(kind: str, names) -> str:
    names = sorted(names)
    return f"the {kind}s {names}" if names else f"no {kind}"


def describe(view: dict) -> str:
    return f"feature view {view['name']!r}"


# Criterion 1 ------------------------------------------------------------------------------


@pytest.mark.points(2)
@pytest.mark.task(taskno=1)
def test_the_objects_apply_into_an_empty_repo_and_fill_its_registry(registry):
    kinds = registry["object_types"]
    have = {
        "entities": len(registry["entities"]),
        "feature views": len(registry["feature_views"]),
    }
    assert all(have.values()), (
        f"{APPLIED}: it worked, but the registry then holds "
        + " and ".join(f"{n} {k}" for k, n in have.items())
        + f" (your list held: {', '.join(kinds) or 'nothing'}). Expected the entities and the "
        "feature views: FeatureStore.apply registers exactly the objects in the list you return."
    )


# Criterion 2 ------------------------------------------------------------------------------


@pytest.mark.points(1)
@pytest.mark.task(taskno=2)
def test_entities_join_on_user_id_and_merchant_id_with_int64_values(registry):
    found = {e["join_key"]: e for e in registry["entities"]}
    listed = ", ".join(f"{e['name']} (join key {e['join_key']})" for e in registry["entities"])
    for key in ("user_id", "merchant_id"):
        assert key in found, (
            f"{APPLIED}: the registry holds the entities [{listed or 'none at all'}]; expected one "
            f"with join key {key!r}, because the stats files are keyed by {key}."
        )
        assert found[key]["value_type"] == "INT64", (
            f"{APPLIED}: the entity joining on {key!r} has value type "
            f"{found[key]['value_type']}, expected INT64 (value_type=ValueType.INT64), "
            f"because {key} is an int64 column."
        )


# Criterion 3 ------------------------------------------------------------------------------


@pytest.mark.points(2)
@pytest.mark.task(taskno=3)
def test_every_view_reads_a_stats_file_with_event_and_created_timestamps(registry, data_dir):
    for view in some_views(registry):
        source = view["source"]
        assert source["kind"] == "file_options", (
            f"{APPLIED}: {describe(view)} reads a {source['kind'] or 'missing'} source, expected "
            "a FileSource over one of the fraud parquet files."
        )
        uri = source["uri"]
        assert view["file"] in FEATURES_OF_FILE, (
            f"{APPLIED}: {describe(view)} reads {uri!r}, expected "
            f"{data_dir / 'fraud' / USER_FILE} or {data_dir / 'fraud' / MERCHANT_FILE}."
        )
        wanted = data_dir / "fraud" / view["file"]
        assert Path(uri).is_absolute() and Path(uri).resolve() == wanted.resolve(), (
            f"{APPLIED}: {describe(view)} reads the path {uri!r}, expected the absolute path "
            f"{str(wanted)!r}, because the duckdb offline store reads a relative path from the "
            "current directory, not from the repo: build it from data_dir."
        )
        assert source["timestamp_field"] == "event_timestamp", (
            f"{APPLIED}: the source of {describe(view)} has timestamp_field="
            f"{source['timestamp_field']!r}, expected 'event_timestamp', because that is when "
            "each snapshot's values became true."
        )
        assert source["created_timestamp_column"] == "created", (
            f"{APPLIED}: the source of {describe(view)} has created_timestamp_column="
            f"{source['created_timestamp_column']!r}, expected 'created', because restated "
            "snapshots share their event_timestamp and only `created` says which is current."
        )


# Criterion 4 ------------------------------------------------------------------------------


@pytest.mark.points(2)
@pytest.mark.task(taskno=4)
def test_the_views_expose_all_nine_features_with_their_types(registry):
    views = some_views(registry)
    for file_name, features in FEATURES_OF_FILE.items():
        typed = {}
        for view in views:
            if view["file"] == file_name:
                typed.update({name: (view, vt) for name, vt in view["features"].items()})
        missing = [name for name in features if name not in typed]
        assert not missing, (
            f"{APPLIED}: no view over {file_name} has the feature(s) {missing}; expected all "
            f"of {list(features)} under their column names."
        )
        for name, kind in features.items():
            view, value_type = typed[name]
            assert value_type in ALLOWED_TYPES[kind], (
                f"{APPLIED}: {describe(view)} types {name!r} as {value_type}, expected "
                f"{TYPE_WORDS[kind]}, because {'counts and flags are whole numbers' if kind == 'int' else 'amounts and rates are fractional'}."  # noqa: E501
            )


# Criterion 5 ------------------------------------------------------------------------------


@pytest.mark.points(2)
@pytest.mark.task(taskno=5)
def test_ttls_fit_how_often_the_snapshots_are_written(registry):
    views = some_views(registry)
    # Never vacuous: views over neither file (judged by the source test) do not count here.
    for file_name in TTL_RANGES:
        assert any(v["file"] == file_name for v in views), (
            f"{APPLIED}: no feature view reads {file_name} (the views read "
            f"{sorted({v['file'] or 'nothing' for v in views})}), so its ttl cannot be judged: "
            f"expected a view over it with a ttl between {TTL_WORDS[file_name]}."
        )
    for view in views:
        if view["file"] not in TTL_RANGES:
            continue  # judged by the source test
        low, high = TTL_RANGES[view["file"]]
        ttl = view["ttl_seconds"]
        assert ttl > 0, (
            f"{APPLIED}: {describe(view)} over {view['file']} has ttl 0, which serves a snapshot "
            f"of any age; expected a ttl between {TTL_WORDS[view['file']]}."
        )
        assert low <= ttl <= high, (
            f"{APPLIED}: {describe(view)} over {view['file']} has a ttl of {_duration(ttl)}, "
            f"expected between {TTL_WORDS[view['file']]}, because "
            + (
                "user snapshots are written every hour: shorter drops good values, longer "
                "serves hour-window counts that are long out of date."
                if view["file"] == USER_FILE
                else "merchant snapshots are written daily: shorter than a day leaves gaps, "
                "longer than 30 days serves stale risk figures."
            )
        )


def _duration(seconds: float) -> str:
    if seconds % DAY == 0:
        return f"{seconds / DAY:g} day(s)"
    if seconds % HOUR == 0:
        return f"{seconds / HOUR:g} hour(s)"
    return f"{seconds:g} seconds"


# Criterion 6 ------------------------------------------------------------------------------


@pytest.mark.points(1)
@pytest.mark.task(taskno=6)
def test_every_view_is_online_with_a_description_and_an_owner_tag(registry):
    for view in some_views(registry):
        assert view["online"], (
            f"{APPLIED}: {describe(view)} has online=False, expected online=True, because the "
            "fraud model reads these features at payment time from the online store."
        )
        assert view["description"].strip(), (
            f"{APPLIED}: {describe(view)} has no description, expected a non-empty one: the "
            "registry is the catalogue other teams read."
        )
        owner = str(view["tags"].get("owner", "")).strip()
        field = (
            f" (owner={view['owner']!r} is set, but as a field, not a tag)" if view["owner"] else ""
        )
        assert owner, (
            f"{APPLIED}: {describe(view)} has the tags {view['tags']}{field}, expected an "
            "'owner' tag (tags={'owner': ...}) so that people know whom to ask."
        )


# Criterion 7 ------------------------------------------------------------------------------


@pytest.mark.points(2)
@pytest.mark.task(taskno=7)
def test_fraud_detection_v1_serves_all_nine_features(registry):
    services = {s["name"]: s for s in registry["feature_services"]}
    assert SERVICE in services, (
        f"{APPLIED}: the registry holds {_names('feature service', services)}, expected "
        f"one named {SERVICE!r}: the model asks for its features by that name."
    )
    served = {feature for _, feature in services[SERVICE]["features"]}
    wanted = [*FEATURES_OF_FILE[USER_FILE], *FEATURES_OF_FILE[MERCHANT_FILE]]
    missing = [f for f in wanted if f not in served]
    assert not missing, (
        f"{APPLIED}: the service {SERVICE!r} serves {sorted(served)}, which lacks {missing}; "
        f"expected all nine features of both views (user features keyed by "
        f"{KEY_OF_FILE[USER_FILE]}, merchant features keyed by {KEY_OF_FILE[MERCHANT_FILE]})."
    )


# Criterion 8 (bonus) ------------------------------------------------------------------------


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
def test_transaction_risk_takes_amount_from_the_request_and_outputs_the_ratio(registry):
    odfv = the_odfv(registry)
    assert "amount" in odfv["request_fields"], (
        f"{APPLIED}: {ODFV!r} reads the request fields {sorted(odfv['request_fields'])}, "
        "expected a RequestSource with the field 'amount', because the amount of the payment "
        "being scored is only known at request time."
    )
    assert list(odfv["features"]) == [RATIO], (
        f"{APPLIED}: {ODFV!r} outputs {list(odfv['features'])}, expected exactly [{RATIO!r}]."
    )
    inputs = {feature for _, feature in odfv["inputs"]}
    assert "avg_amount_7d" in inputs, (
        f"{APPLIED}: {ODFV!r} reads the view features {sorted(inputs) or 'none'}, expected "
        "avg_amount_7d from your user view among its sources."
    )


# Criterion 9 --------------------------------------------------------------------------------

PROBE_USER = 10_000_000
"""A user id the data never holds."""


def probe_rows(data_dir: Path, grading) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`find_probe_rows`, from the oracle cache when it holds them: finding them reads every
    user snapshot (hundreds of MiB on the trusted side, a second or two), for three rows."""
    entity_file = grading.cache_path("ex1_probe_entity.parquet")
    want_file = grading.cache_path("ex1_probe_want.parquet")
    if entity_file.is_file() and want_file.is_file():
        return pd.read_parquet(entity_file), pd.read_parquet(want_file)
    entity, want = find_probe_rows(data_dir)
    for frame, path in ((want, want_file), (entity, entity_file)):  # the entity file last
        partial = path.with_name(f".{path.name}.partial")
        frame.to_parquet(partial, index=False)
        partial.replace(path)
    return entity, want


def find_probe_rows(data_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(entity rows, expected user features): a user's snapshot time, one second before it,
    and an unknown user, from the kit's own data (a snapshot that was never restated, whose
    values differ from the previous snapshot's, so the two rows tell old from new)."""
    columns = ["user_id", "event_timestamp", "created", *USER_FEATURES]
    stats = pd.read_parquet(data_dir / "fraud" / USER_FILE, columns=columns)
    stats = stats.sort_values(["user_id", "event_timestamp", "created"], ignore_index=True)
    single = ~stats.duplicated(["user_id", "event_timestamp"], keep=False)
    features = list(USER_FEATURES)
    previous = stats.groupby("user_id")[features].shift(1)
    step = stats.groupby("user_id")["event_timestamp"].diff()
    differs = (stats[features] != previous).all(axis=1)
    usable = stats[
        single & single.shift(1, fill_value=False) & differs & (step == pd.Timedelta(hours=1))
    ]
    row = usable.iloc[len(usable) // 2]
    prev = stats.loc[row.name - 1]
    merchants = pd.read_parquet(data_dir / "fraud" / MERCHANT_FILE, columns=["merchant_id"])
    merchant = int(merchants["merchant_id"].iloc[0])
    at = pd.Timestamp(row["event_timestamp"])
    entity = pd.DataFrame(
        {
            "transaction_id": np.array([1, 2, 3], dtype=np.int64),
            "user_id": np.array([row["user_id"], row["user_id"], PROBE_USER], dtype=np.int64),
            "merchant_id": np.array([merchant] * 3, dtype=np.int64),
            "amount": [10.0, 10.0, 10.0],
            "event_timestamp": [at, at - pd.Timedelta(seconds=1), at],
        }
    )
    want = pd.DataFrame([row[features], prev[features], pd.Series(np.nan, index=features)])
    return entity, want.reset_index(drop=True).astype("float64")


@pytest.mark.points(1)
@pytest.mark.task(taskno=9)
def test_training_features_are_the_latest_snapshot_at_or_before_each_transaction(
    student, registry, data_dir, grading
):
    entity, want = probe_rows(data_dir, grading)
    user, at = int(entity["user_id"][0]), entity["event_timestamp"][0]
    what = (
        f"Built a training frame through {SERVICE!r} for user_id {user} at {at} (a snapshot's "
        f"own time), one second earlier, and the unknown user_id {PROBE_USER}"
    )
    try:
        frame = training_frame(student, "repo", entity)
    except StudentError as exc:
        where = f" ({exc.where})" if exc.where else ""
        raise AssertionError(
            f"{what}: it failed with {exc.type_name}: {exc.message}{where}"
        ) from None
    assert isinstance(frame, pd.DataFrame) and len(frame) == len(entity), (
        f"{what}: got {len(frame) if isinstance(frame, pd.DataFrame) else 'no'} rows, expected "
        f"{len(entity)}: every transaction is kept, matched or not."
    )
    absent = [f for f in want.columns if f not in frame.columns]
    assert not absent, f"{what}: the columns {absent} are missing from it."
    got = frame.sort_values("transaction_id", ignore_index=True)
    labels = ["at the snapshot", "one second before it", "for the unknown user"]
    for i, label in enumerate(labels):
        for feature in want.columns:
            a = pd.to_numeric(pd.Series([got[feature][i]]), errors="coerce").astype("float64")[0]
            b = want[feature][i]
            same = (np.isnan(a) and np.isnan(b)) or np.isclose(a, b, rtol=1e-6, atol=0.0)
            assert same, (
                f"{what}: {label} {feature!r} is {'missing' if np.isnan(a) else f'{a:g}'}, "
                f"expected {'missing' if np.isnan(b) else f'{b:g}'}: the latest snapshot whose "
                "event_timestamp is at or before the transaction (the one stamped exactly "
                "then counts; a later one would leak the future), missing for an unknown user."
            )
