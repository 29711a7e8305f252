"""The suites judge facts the submission cannot forge, and any correct technique gets 100.

One `grade batch` (one slot, warm workers) grades:
* `tests/alt_solutions/`: a second, differently written correct answer to every exercise
  (numpy searchsorted for ex2, the registry read as protobuf for ex3, ...): full marks;
* an ex2 join that filters the feature rows once per entity row: it fails the scale test;
* the issue-12 attacks on the harness, each alone in its submission: an ex3 answer that looks
  the expected report up in the grader instead of computing it, an ex4 answer that replaces the
  registry-reading helper in its own worker, and ex1 answers whose registry is forged (a
  million empty views; a hundred empty views): each scores 0 on the exercise it attacks.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ALT = Path(__file__).resolve().parent / "alt_solutions"

ATTACK_EX3_ORACLE = """
import importlib.util
from pathlib import Path

import grader


def _oracle():
    try:  # where the expected reports used to live, importable by student code
        from grader.harness.freshness_repos import expected_report
        return expected_report
    except ImportError:
        pass
    path = Path(grader.__file__).parent / "suites" / "ex3_freshness" / "repos.py"
    spec = importlib.util.spec_from_file_location("stolen", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # the suites are masked in the sandbox: this fails
    return module.expected_report


def check_freshness(repo_path, *, now=None, max_materialization_lag=None):
    import pandas as pd
    name = Path(repo_path).name
    return _oracle()(name, pd.Timestamp(now or "2024-04-01", tz="UTC"), max_materialization_lag)


def format_alerts(report):
    rows = report.itertuples()
    return [f"{r.feature_view}: {r.status}: stolen" for r in rows if r.status != "fresh"]


def main(argv=None):
    report = check_freshness("views")
    return 1 if format_alerts(report) else 0
"""

ATTACK_EX4_REPLACE = """
import grader.harness.feast_repo as harness

SUMMARY = {
    "project": "p", "offline_store": "duckdb", "online_store": "sqlite",
    "online_path": None, "registry_path": None,
    "entities": [{"name": "user", "join_key": "user_id", "value_type": "INT64"}],
    "feature_views": [{"name": "user_activity", "join_keys": ["user_id"], "features": {},
                       "ttl_seconds": 604800.0, "online": True, "source_path": "/x",
                       "timestamp_field": "event_timestamp", "most_recent_end_time": None}],
    "feature_services": [],
}
# Replace every helper the grader could run in this worker.
harness.registry_summary = lambda *a, **k: SUMMARY
harness.repo_state = lambda *a, **k: {"registry": b"", **SUMMARY}
harness.summarize = lambda *a, **k: SUMMARY


def write_repo(repo_dir, data_path):
    from pathlib import Path
    Path(repo_dir).mkdir(parents=True, exist_ok=True)
    (Path(repo_dir) / "feature_store.yaml").write_text(
        "project: p\\nprovider: local\\nregistry: registry.db\\n"
        "online_store:\\n  type: sqlite\\n  path: online.db\\noffline_store:\\n  type: duckdb\\n"
    )


def apply_repo(repo_dir):
    return ["user_activity"]


def materialize_online(repo_dir, start, end):
    return None


def training_frame(repo_dir, entity_df, features):
    raise NotImplementedError


def online_features(repo_dir, user_ids, features):
    raise NotImplementedError
"""

ATTACK_EX1_FORGED = """
import grader.harness.fraud as harness

VIEWS = {views}


def forged(module, data_dir, repo_dir, cwd=None):
    from feast.protos.feast.core.Registry_pb2 import Registry

    registry = Registry()
    for i in range(VIEWS):
        view = registry.feature_views.add()
        view.spec.name = f"v{{i}}"
        view.spec.project = "fraud"
    return {{"registry": registry.SerializeToString(), "object_types": ["FeatureView"]}}


harness.apply_definitions = forged


def build_definitions(data_dir):
    return []
"""


ROW_BY_ROW_EX2 = """
import pandas as pd


def point_in_time_join(entity_df, feature_df, *, entity_key="user_id",
                       timestamp_col="event_timestamp", feature_timestamp_col="event_timestamp",
                       created_timestamp_col=None, ttl=None, feature_names=None):
    # The mistake the scale test is for: a filter of the feature rows per entity row.
    skip = {entity_key, feature_timestamp_col, created_timestamp_col}
    names = list(feature_names) if feature_names is not None else [
        c for c in feature_df.columns if c not in skip]
    keys = feature_df[entity_key]
    times = pd.to_datetime(feature_df[feature_timestamp_col], utc=True)
    rows = []
    for _, row in entity_df.iterrows():
        at = pd.Timestamp(row[timestamp_col])
        at = at.tz_localize("UTC") if at.tzinfo is None else at
        ok = (keys == row[entity_key]) & (times <= at)
        if ttl:
            ok &= times >= at - ttl
        found = feature_df[ok]
        rows.append(found.iloc[-1][names] if len(found) else pd.Series(index=names, dtype=object))
    features = pd.DataFrame(rows, columns=names)
    features.index = entity_df.index
    return pd.concat([entity_df, features], axis=1)
"""


@pytest.fixture(scope="module")
def batch(lab, tmp_path_factory):
    root = tmp_path_factory.mktemp("trust")
    subs, out = root / "submissions", root / "results"
    shutil.copytree(ALT, subs / "alt_solutions", ignore=shutil.ignore_patterns("__pycache__"))
    attacks = {
        "attack_ex3_oracle": ("ex3_freshness", "freshness.py", ATTACK_EX3_ORACLE),
        "attack_ex4_replace": ("ex4_feast_e2e", "feast_e2e.py", ATTACK_EX4_REPLACE),
        "attack_ex1_million": (
            "ex1_fraud_design", "fraud_design.py", ATTACK_EX1_FORGED.format(views=1_000_000)
        ),
        "attack_ex1_hundred": (
            "ex1_fraud_design", "fraud_design.py", ATTACK_EX1_FORGED.format(views=100)
        ),
    }  # fmt: skip
    (subs / "row_by_row_ex2").mkdir(parents=True)
    (subs / "row_by_row_ex2" / "pit_join.py").write_text(ROW_BY_ROW_EX2)
    for name, (_slug, module, source) in attacks.items():
        (subs / name).mkdir(parents=True)
        (subs / name / module).write_text(source)
    proc = subprocess.run(
        [sys.executable, "-m", "grader.cli", "--kit", str(lab.root), "batch", str(subs),
         "--out", str(out), "--workers", "1", "--timeout", "900"],
        capture_output=True, text=True, timeout=3600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {
        name: json.loads((out / f"{name}.json").read_text())
        for name in [*attacks, "alt_solutions", "row_by_row_ex2"]
    }


def test_differently_written_correct_solutions_score_full_marks(batch):
    card = batch["alt_solutions"]
    failing = [
        f"{t['id']}: {t['feedback'][:200]}"
        for e in card["exercises"]
        for t in e["tests"]
        if t["status"] != "passed"
    ]
    assert card["score"] == card["max_score"] == 100, failing[:5]


@pytest.mark.parametrize(
    "name, slug",
    [
        ("attack_ex3_oracle", "ex3_freshness"),
        ("attack_ex4_replace", "ex4_feast_e2e"),
        ("attack_ex1_million", "ex1_fraud_design"),
        ("attack_ex1_hundred", "ex1_fraud_design"),
    ],
)
def test_answers_that_forge_what_the_grader_reads_score_zero(batch, name, slug):
    exercise = next(e for e in batch[name]["exercises"] if e["slug"] == slug)
    passed = [t["id"] for t in exercise["tests"] if t["status"] == "passed"]
    assert exercise["score"] == 0 and not passed, passed


def test_every_test_in_the_scorecard_names_its_readme_task(batch):
    for exercise in batch["alt_solutions"]["exercises"]:
        assert exercise["tests"]
        assert all(isinstance(t.get("task"), int) and t["task"] >= 1 for t in exercise["tests"])


def test_a_join_that_filters_the_features_per_row_fails_the_scale_test_only_for_speed(batch):
    exercise = next(e for e in batch["row_by_row_ex2"]["exercises"] if e["slug"] == "ex2_pit_join")
    tests = {t["id"].split("::")[1]: t for t in exercise["tests"]}
    speed = tests["test_a_large_join_runs_vectorised_not_row_by_row"]
    assert speed["status"] == "failed" and "far too slow" in speed["feedback"], speed
    # ... while it is right where speed does not matter: it failed for being slow.
    assert tests["test_a_feature_row_from_the_future_is_never_used"]["status"] == "passed"
    assert (
        tests["test_each_entity_row_gets_the_newest_earlier_row_of_its_own_key"]["status"]
        == "passed"
    )
