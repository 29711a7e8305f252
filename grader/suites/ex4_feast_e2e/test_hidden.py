"""ex4_feast_e2e, hidden tests: registry contents, training frames that keep every row in
order and are point-in-time correct, and no skew between online and training values at `end`.

Expected values come from an independent `merge_asof` point-in-time join (ttl 7 days, both
bounds inclusive) of `data/user_features.parquet` on the trusted side, cached per suite and
data version.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from grader.harness.feast_repo import (
    END,
    FEATURES,
    FLOAT32_RTOL,
    REFS,
    SERVICE,
    SHORT,
    START,
    TTL,
    VIEW,
    Pipeline,
)
from grader.sandbox.proxy import StudentError

CACHE_VERSION = "1"


@pytest.fixture(scope="module")
def data_dir(grading) -> Path:
    """The kit's data folder (the shared session-scoped fixture cannot use `grading`)."""
    return grading.kit.data_dir


@pytest.fixture(scope="module")
def pipeline(student, data_dir) -> Pipeline:
    return Pipeline(student, student.workdir / "repo_hidden", data_dir / "user_features.parquet")


@pytest.fixture(scope="module")
def user_data(data_dir) -> pd.DataFrame:
    return pd.read_parquet(data_dir / "user_features.parquet")


def pit_join(entity: pd.DataFrame, data: pd.DataFrame) -> pd.DataFrame:
    """Per entity row, the user's latest row at or before its timestamp and at most 7 days
    old, else missing; features as float64, one row per entity row, in its order."""
    right = data.rename(columns={"event_timestamp": "_fts"})[["user_id", "_fts", *SHORT]]
    left = pd.DataFrame(
        {
            "user_id": entity["user_id"].to_numpy(),
            "_ts": pd.to_datetime(entity["event_timestamp"], utc=True).to_numpy(),
            "_row": np.arange(len(entity)),
        }
    )
    left["_ts"] = pd.to_datetime(left["_ts"], utc=True)
    joined = pd.merge_asof(
        left.sort_values("_ts", kind="stable"),
        right.sort_values("_fts", kind="stable"),
        left_on="_ts",
        right_on="_fts",
        by="user_id",
        direction="backward",
    ).sort_values("_row")
    out = joined[SHORT].astype("float64").reset_index(drop=True)
    too_old = ((joined["_ts"] - joined["_fts"]) > TTL).to_numpy()
    out.loc[too_old] = np.nan
    return out


BARE_YAML = """\
project: no_definitions
provider: local
registry: data/registry.db
online_store:
  type: sqlite
  path: data/online_store.db
offline_store:
  type: duckdb
entity_key_serialization_version: 3
"""
"""A valid feature_store.yaml beside a features.py that defines nothing (apply_repo's
ValueError: nothing would be registered)."""


def failed(call: str, exc: StudentError) -> AssertionError:
    if exc.not_implemented:
        return AssertionError(f"Not done yet: {exc.function} still raises NotImplementedError.")
    where = f" ({exc.where})" if exc.where else ""
    return AssertionError(f"Called {call}: it raised {exc.type_name}: {exc.message}{where}")


def training(student, pipeline: Pipeline, entity: pd.DataFrame, call: str) -> pd.DataFrame:
    pipeline.need("write_repo", "apply_repo")
    try:
        frame = student.training_frame(pipeline.repo, entity, REFS, _timeout=180)
    except StudentError as exc:
        raise failed(call, exc) from None
    assert isinstance(frame, pd.DataFrame), (
        f"Called {call}: got a {type(frame).__name__}, expected a pandas DataFrame."
    )
    return frame


def floats(values) -> np.ndarray:
    """Online values as float64, None as missing."""
    out = []
    for v in values:
        try:
            out.append(np.nan if v is None else float(v))
        except (TypeError, ValueError):
            out.append(np.nan)
    return np.array(out, dtype="float64")


# The registry ------------------------------------------------------------------------------


@pytest.mark.points(2)
@pytest.mark.task(taskno=1)
def test_the_registry_holds_the_entity_and_the_view_with_six_typed_features_and_a_7_day_ttl(
    pipeline,
):
    summary = pipeline.need("write_repo", "apply_repo", "summary")
    what = "Read the registry of the repo after write_repo and apply_repo"
    entities = {e["join_key"]: e for e in summary["entities"]}
    assert "user_id" in entities and entities["user_id"]["value_type"] == "INT64", (
        f"{what}: its entities are {summary['entities']}, expected one with join key 'user_id' "
        "and value type INT64."
    )
    views = {v["name"]: v for v in summary["feature_views"]}
    assert VIEW in views, f"{what}: it holds the views {sorted(views)}, expected {VIEW!r}."
    view = views[VIEW]
    assert view["join_keys"] == ["user_id"], (
        f"{what}: {VIEW!r} is keyed by {view['join_keys']}, expected ['user_id']."
    )
    assert view["features"] == FEATURES, (
        f"{what}: {VIEW!r} has the features {view['features']}, expected {FEATURES}: the "
        "lesson's six features with those types."
    )
    assert view["ttl_seconds"] == TTL.total_seconds(), (
        f"{what}: {VIEW!r} has a ttl of {view['ttl_seconds']:g} s, expected 7 days "
        f"({TTL.total_seconds():g} s): older values must count as missing."
    )
    assert view["online"], f"{what}: {VIEW!r} has online=False, expected online=True."
    assert Path(view["source_path"]).is_absolute(), (
        f"{what}: {VIEW!r} reads {view['source_path']!r}, expected an absolute path, because "
        "the duckdb offline store reads a relative path from the current directory."
    )


@pytest.mark.points(1)
@pytest.mark.task(taskno=1)
def test_the_registry_holds_the_service_user_activity_v1_with_the_whole_view(pipeline):
    summary = pipeline.need("write_repo", "apply_repo", "summary")
    services = {s["name"]: s for s in summary["feature_services"]}
    assert SERVICE in services, (
        f"Read the registry after apply_repo: it holds the feature services {sorted(services)}, "
        f"expected {SERVICE!r}."
    )
    served = sorted(tuple(pair) for pair in services[SERVICE]["features"])
    want = sorted((VIEW, name) for name in FEATURES)
    assert served == want, (
        f"Read the registry after apply_repo: {SERVICE!r} serves {served}, expected every "
        f"feature of {VIEW!r}: {want}."
    )


# Training frames ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def entity_df(user_data) -> pd.DataFrame:
    """Training examples: known and unknown users, duplicate rows, rows before the data and
    more than 7 days after it, timestamps on and between data rows; shuffled, string index."""
    rng = np.random.default_rng(11)
    n = 1500
    users = rng.integers(1, 521, n)  # 501..520 are unknown
    seconds = rng.integers(0, 112 * 86_400, n)
    stamps = pd.Timestamp("2023-12-25") + pd.to_timedelta(seconds, unit="s")
    on_the_day = rng.random(n) < 0.3
    stamps = stamps.where(~on_the_day, stamps.floor("D"))
    frame = pd.DataFrame(
        {"user_id": users.astype(np.int64), "event_timestamp": stamps, "label": rng.random(n)}
    )
    frame = pd.concat([frame, frame.sample(100, random_state=1)], ignore_index=True)
    frame = frame.sample(frac=1.0, random_state=5, ignore_index=True)
    frame.insert(0, "example_id", np.arange(100_000, 100_000 + len(frame), dtype=np.int64))
    frame.index = pd.Index([f"ex{i}" for i in rng.permutation(len(frame))], name="example")
    return frame


@pytest.fixture(scope="module")
def expected(entity_df, user_data, grading) -> pd.DataFrame:
    cached = grading.cache_path(f"ex4_expected_{CACHE_VERSION}.parquet")
    if cached.is_file():
        return pd.read_parquet(cached)
    want = pit_join(entity_df, user_data)
    want.insert(0, "example_id", entity_df["example_id"].to_numpy())
    want.to_parquet(cached, index=False)
    return want


@pytest.fixture(scope="module")
def big_frame(student, pipeline, entity_df) -> pd.DataFrame:
    call = (
        f"training_frame(repo_dir, entity_df, features) with {len(entity_df)} shuffled rows "
        "(duplicates, unknown users, rows outside the data)"
    )
    return training(student, pipeline, entity_df, call)


def assert_real_values(frame: pd.DataFrame, want: pd.Series, call: str) -> None:
    """The frame's daily_spend holds the data's values (in any order), not a placeholder."""
    assert "daily_spend" in frame.columns, f"{call}: the result has no 'daily_spend' column."
    got = pd.to_numeric(frame["daily_spend"], errors="coerce").astype("float64").to_numpy()
    expected = np.unique(np.round(want.dropna().to_numpy(dtype="float64"), 2))
    found = np.isin(expected, np.unique(np.round(got[~np.isnan(got)], 2)))
    assert found.mean() >= 0.5, (
        f"{call}: its daily_spend column holds {len(np.unique(got[~np.isnan(got)]))} distinct "
        f"value(s), only {int(found.sum())} of the {len(expected)} expected ones: it should "
        "hold the feature values read from the offline store."
    )


@pytest.mark.points(2)
@pytest.mark.task(taskno=4)
def test_training_frame_keeps_every_row_including_duplicates_and_rows_without_features(
    big_frame, entity_df, expected
):
    call = (
        f"Called training_frame with {len(entity_df)} entity rows, 100 of them duplicates and "
        "some with no feature row in the 7 days before them"
    )
    assert_real_values(big_frame, expected["daily_spend"], call)
    if "example_id" in big_frame.columns:
        got = big_frame["example_id"].tolist()
        kept = len(big_frame) == len(entity_df) and sorted(got) == sorted(entity_df["example_id"])
        distinct = f" with {len(set(got))} distinct examples"
    else:  # judged by the columns test; count the rows here
        kept, distinct = len(big_frame) == len(entity_df), ""
    assert kept, (
        f"{call}: got {len(big_frame)} rows{distinct}, expected all {len(entity_df)} rows "
        "once each. Feast's `file` offline store drops rows without a feature in the ttl and "
        "merges duplicate rows: use offline_store type duckdb."
    )


@pytest.mark.points(2)
@pytest.mark.task(taskno=4)
def test_training_frame_is_point_in_time_correct_for_every_row(big_frame, entity_df, expected):
    call = f"Called training_frame with {len(entity_df)} entity rows"
    absent = [name for name in SHORT if name not in big_frame.columns]
    assert not absent, (
        f"{call} and features {REFS}: the columns {absent} are missing, expected one column "
        "per feature under its short name."
    )
    if "example_id" in big_frame.columns:
        got = big_frame.drop_duplicates("example_id").set_index("example_id")
    else:  # the columns test judges the lost column; align by position here
        assert len(big_frame) == len(entity_df), (
            f"{call}: the column 'example_id' and {len(entity_df) - len(big_frame)} rows are "
            "missing, so rows cannot be matched to entity_df's."
        )
        got = big_frame.set_axis(entity_df["example_id"].to_numpy())
    common = expected["example_id"].isin(got.index).to_numpy()
    assert common.sum() >= len(expected) // 2, (
        f"{call}: only {int(common.sum())} of its rows came back, too few to compare."
    )
    want = expected[common].reset_index(drop=True)
    ent = entity_df[common].reset_index(drop=True)
    got = got.loc[want["example_id"].to_numpy()].reset_index()
    for name in SHORT:
        a = pd.to_numeric(got[name], errors="coerce").astype("float64").to_numpy()
        b = want[name].to_numpy()
        ok = np.isclose(a, b, rtol=FLOAT32_RTOL, atol=0.0, equal_nan=True)
        if ok.all():
            continue
        i = int(np.flatnonzero(~ok)[0])
        shuffled = _same_values(a, b)
        hint = (
            " The right values are there, on the wrong rows: Feast returns rows in its own "
            "order, so put them back in entity_df's order before attaching the features."
            if shuffled
            else " Expected the user's latest row at or before the timestamp, at most 7 days "
            "old; missing for unknown users, rows before the data and rows beyond the ttl."
        )
        raise AssertionError(
            f"{call}: {int((~ok).sum())} rows have a wrong {name!r}; e.g. example "
            f"{want['example_id'].iloc[i]} (user {ent['user_id'].iloc[i]} at "
            f"{ent['event_timestamp'].iloc[i]}) got {_show(a[i])}, expected {_show(b[i])}." + hint
        )


def _same_values(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether `a` and `b` hold the same values, in any order."""
    a, b = np.sort(a[~np.isnan(a)]), np.sort(b[~np.isnan(b)])
    return len(a) == len(b) and bool(np.isclose(a, b, rtol=FLOAT32_RTOL).all())


def _show(x: float) -> str:
    return "missing" if np.isnan(x) else f"{x:g}"


@pytest.fixture(scope="module")
def order_df(user_data) -> pd.DataFrame:
    """300 known users at random times inside the data, shuffled, with a string index."""
    rng = np.random.default_rng(23)
    n = 300
    seconds = rng.integers(7 * 86_400, 89 * 86_400, n)
    frame = pd.DataFrame(
        {
            "user_id": rng.integers(1, 501, n).astype(np.int64),
            "event_timestamp": pd.Timestamp("2024-01-01") + pd.to_timedelta(seconds, unit="s"),
            "example_id": np.arange(500_000, 500_000 + n, dtype=np.int64),
            "label": rng.integers(0, 2, n).astype(np.int64),
        },
        index=pd.Index([f"row-{i}" for i in rng.permutation(n)], name="row"),
    )
    return frame


@pytest.fixture(scope="module")
def order_frame(student, pipeline, order_df) -> pd.DataFrame:
    call = f"training_frame(repo_dir, entity_df, features) with {len(order_df)} shuffled rows"
    return training(student, pipeline, order_df, call)


@pytest.mark.points(1)
@pytest.mark.task(taskno=4)
def test_training_frame_rows_follow_a_shuffled_entity_df_and_keep_its_index(
    order_frame, order_df, user_data
):
    call = (
        f"Called training_frame with {len(order_df)} rows in no time order and the index "
        f"{list(order_df.index[:3])}..."
    )
    assert len(order_frame) == len(order_df), (
        f"{call}: got {len(order_frame)} rows, expected {len(order_df)}."
    )
    assert list(order_frame.index) == list(order_df.index), (
        f"{call}: the result's index starts {list(order_frame.index[:3])}, expected "
        f"entity_df's own index {list(order_df.index[:3])}..., in the same order."
    )
    assert "example_id" in order_frame.columns, f"{call}: the column 'example_id' is missing."
    same_rows = order_frame["example_id"].to_numpy() == order_df["example_id"].to_numpy()
    assert same_rows.all(), (
        f"{call}: row {int(np.flatnonzero(~same_rows)[0])} holds example "
        f"{order_frame['example_id'].iloc[int(np.flatnonzero(~same_rows)[0])]}, expected "
        f"{order_df['example_id'].iloc[int(np.flatnonzero(~same_rows)[0])]}: Feast returns "
        "rows in its own order, so put them back in entity_df's order."
    )
    want = pit_join(order_df, user_data)
    for name in SHORT:
        got = pd.to_numeric(order_frame[name], errors="coerce").astype("float64").to_numpy()
        ok = np.isclose(got, want[name].to_numpy(), rtol=FLOAT32_RTOL, equal_nan=True)
        assert ok.all(), (
            f"{call}: {int((~ok).sum())} rows have a wrong {name!r} (first: row "
            f"{int(np.flatnonzero(~ok)[0])}), expected each row's own point-in-time value: "
            "the features must stay with their entity row."
        )


@pytest.mark.points(1)
@pytest.mark.task(taskno=4)
def test_training_frame_keeps_entity_df_columns_unchanged_then_the_short_feature_names(
    student, pipeline, order_frame, order_df, user_data
):
    call = f"Called training_frame with entity_df columns {list(order_df.columns)} and {REFS}"
    assert_real_values(order_frame, pit_join(order_df, user_data)["daily_spend"], call)
    want = [*order_df.columns, *SHORT]
    assert list(order_frame.columns) == want, (
        f"{call}: got the columns {list(order_frame.columns)}, expected {want}: entity_df's "
        "columns, then one column per feature in the order asked, under its short name."
    )
    got = order_frame.set_index("example_id").loc[order_df["example_id"]].reset_index()
    for column in order_df.columns:
        a, b = got[column], order_df[column].reset_index(drop=True)
        if a.dtype == b.dtype:
            assert a.equals(b), (
                f"{call}: the column {column!r} came back with other values (e.g. "
                f"{a.iloc[0]!r} for {b.iloc[0]!r}): entity_df's columns must come back unchanged."
            )
        assert a.dtype == b.dtype, (
            f"{call}: the column {column!r} came back as {a.dtype} (e.g. {a.iloc[0]!r}), "
            f"expected {b.dtype} (e.g. {b.iloc[0]!r}): entity_df's columns must come back "
            "unchanged (Feast turns naive timestamps into UTC ones: give back entity_df's own)."
        )
    # No rows at all (a filter that matched nothing): still entity_df's columns, then the features.
    empty_df = order_df.iloc[:0]
    call = f"training_frame(repo_dir, entity_df, features) with an empty entity_df ({want[:3]}...)"
    empty = training(student, pipeline, empty_df, call)
    assert len(empty) == 0 and list(empty.columns) == want, (
        f"Called {call}: got {len(empty)} rows and the columns {list(empty.columns)}, expected "
        f"0 rows and the columns {want}: an empty entity_df gives an empty frame of the same shape."
    )


# No skew -----------------------------------------------------------------------------------


# Bad arguments -----------------------------------------------------------------------------


def expect_value_error(student, call: str, function: str, *args) -> None:
    try:
        got = student.call(function, *args, _timeout=120)
    except StudentError as exc:
        if exc.not_implemented:
            raise failed(call, exc) from None
        assert exc.is_a("ValueError"), (
            f"Called {call}: it raised {exc.type_name}: {exc.message}, expected a ValueError "
            "that says what is wrong with the arguments."
        )
        return
    raise AssertionError(f"Called {call}: it returned {type(got).__name__}, expected ValueError.")


@pytest.mark.points(1)
@pytest.mark.task(taskno=3)
def test_a_start_after_end_or_a_reference_without_its_view_raises_value_error(pipeline, student):
    pipeline.need("write_repo", "apply_repo")
    expect_value_error(
        student,
        f"materialize_online(repo_dir, {END:%Y-%m-%d}, {START:%Y-%m-%d}) (start after end)",
        "materialize_online",
        pipeline.repo,
        END,
        START,
    )
    entity = pd.DataFrame({"user_id": [1], "event_timestamp": [datetime(2024, 2, 1)]})
    expect_value_error(
        student,
        "training_frame(repo_dir, entity_df, ['daily_spend']) (no 'user_activity:' prefix)",
        "training_frame",
        pipeline.repo,
        entity,
        ["daily_spend"],
    )
    for ref in (":daily_spend", "user_activity:"):
        expect_value_error(
            student,
            f"training_frame(repo_dir, entity_df, [{ref!r}]) (not of the form 'view:feature')",
            "training_frame",
            pipeline.repo,
            entity,
            [ref],
        )
    for column in ("user_id", "event_timestamp"):
        expect_value_error(
            student,
            f"training_frame(repo_dir, entity_df without {column!r}, [{REFS[0]!r}])",
            "training_frame",
            pipeline.repo,
            entity.drop(columns=column),
            [REFS[0]],
        )
    expect_value_error(
        student,
        f"training_frame(repo_dir, entity_df, [{REFS[0]!r}, {REFS[0]!r}]) (a feature twice)",
        "training_frame",
        pipeline.repo,
        entity,
        [REFS[0], REFS[0]],
    )
    call = f"materialize_online(repo_dir, {END:%Y-%m-%d}, {END:%Y-%m-%d}) (start equal to end)"
    try:
        student.call("materialize_online", pipeline.repo, END, END, _timeout=180)
    except StudentError as exc:
        raise AssertionError(
            f"Called {call}: it raised {exc.type_name}: {exc.message}, expected it to work: "
            "only a start AFTER end is a ValueError."
        ) from None
    call = "online_features(repo_dir, [], <the six features>)"
    try:
        got = student.online_features(pipeline.repo, [], REFS, _timeout=120)
    except StudentError as exc:
        raise failed(call, exc) from None
    want = {"user_id": [], **{name: [] for name in SHORT}}
    shown = (
        {str(k): list(v) if isinstance(v, list | tuple) else v for k, v in dict(got).items()}
        if isinstance(got, dict)
        else got
    )
    assert shown == want, (
        f"Called {call}: got {shown!r}, expected {want!r}: no users, so every list is empty "
        "(and no call to Feast is needed)."
    )


@pytest.mark.points(1)
@pytest.mark.task(taskno=1)
def test_write_repo_creates_missing_parents_can_run_twice_and_apply_needs_its_yaml(
    student, pipeline, data_dir
):
    data = str(data_dir / "user_features.parquet")
    nested = str(student.workdir / "nested" / "deeper" / "repo")
    for call in (f"write_repo({nested!r}, data_path)", f"write_repo({nested!r}, data_path) again"):
        try:
            student.write_repo(nested, data, _timeout=60)
        except StudentError as exc:
            raise AssertionError(
                f"Called {call}: it raised {exc.type_name}: {exc.message}, expected it to "
                "create repo_dir and its missing parents, and to rewrite the same files when "
                "called again (mkdir(parents=True, exist_ok=True))."
            ) from None
    try:
        state = student.job("feast_repo:repo_state", nested)
    except StudentError as exc:
        raise AssertionError(f"After write_repo({nested!r}, ...): {exc.message}.") from None
    assert "duckdb" in str(state.get("offline_store", "")).lower(), (
        f"After write_repo({nested!r}, ...) its feature_store.yaml names the offline store "
        f"{state.get('offline_store')!r}, expected duckdb."
    )
    bare = str(student.workdir / "no_definitions")
    files = {"feature_store.yaml": BARE_YAML.encode(), "features.py": b"# nothing here yet\n"}
    student.harness("freshness_repos:install", bare, files, [])
    expect_value_error(
        student,
        f"apply_repo({bare!r}) on a repo whose features.py defines no Feast object",
        "apply_repo",
        bare,
    )
    empty = str(student.workdir / "no_yaml_here")
    try:
        got = student.apply_repo(empty, _timeout=120)
    except StudentError as exc:
        assert exc.is_a("FileNotFoundError"), (
            f"Called apply_repo({empty!r}) on a folder without feature_store.yaml: it raised "
            f"{exc.type_name}: {exc.message}, expected FileNotFoundError."
        )
        return
    raise AssertionError(
        f"Called apply_repo({empty!r}) on a folder without feature_store.yaml: it returned "
        f"{got!r}, expected FileNotFoundError."
    )
