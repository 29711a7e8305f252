"""Harness facts come from code the submission cannot replace, within caps.

* A `job` runs only in a worker that loaded no student module.
* ex4's repo state is read from files (yaml + registry bytes) and summarized on the trusted
  side with the protobuf classes, within byte and object caps; ex1's registry reader is capped.
* The expected values of ex3 live beside the suites (masked in the sandbox), not in the harness.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from grader.harness import feast_repo, fraud
from grader.sandbox.worker import Worker

KIT_ROOT = Path(__file__).resolve().parent.parent


def registry_bytes(views: int, project: str = "p") -> bytes:
    from feast.protos.feast.core.Registry_pb2 import Registry

    registry = Registry()
    entity = registry.entities.add()
    entity.spec.name, entity.spec.project, entity.spec.join_key = "user", project, "user_id"
    entity.spec.value_type = 4  # INT64
    for i in range(views):
        view = registry.feature_views.add()
        view.spec.name, view.spec.project = f"v{i}", project
        view.spec.ttl.seconds = 3600
        feature = view.spec.features.add()
        feature.name, feature.value_type = "spend", 6  # FLOAT: Feast's Float32
        interval = view.meta.materialization_intervals.add()
        interval.end_time.seconds = 1_700_000_000
    other = registry.feature_views.add()
    other.spec.name, other.spec.project = "elsewhere", "another_project"
    return registry.SerializeToString()


def test_a_job_is_refused_in_a_worker_that_loaded_student_code(tmp_path):
    module = tmp_path / "answer.py"
    module.write_text("X = 1\n")
    worker = Worker()
    answer, _ = worker.handle({"op": "load", "path": str(module), "module": "answer"}, [])
    assert "error" not in answer
    answer, _ = worker.handle(
        {"op": "job", "target": "feast_repo:repo_state", "args": [str(tmp_path)], "kwargs": {}},
        [],
    )
    assert "only in a worker that loaded no student module" in answer["error"]["message"]


def test_a_job_reads_the_repo_config_and_registry_as_data(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "feature_store.yaml").write_text(
        "project: p\nregistry: data/registry.db\nonline_store:\n  type: sqlite\n"
        "  path: data/online.db\noffline_store:\n  type: duckdb\n"
    )
    (repo / "data").mkdir()
    (repo / "data" / "registry.db").write_bytes(registry_bytes(2))
    state = feast_repo.repo_state(str(repo))
    assert state["offline_store"] == "duckdb" and state["online_store"] == "sqlite"
    assert state["registry_path"] == str((repo / "data" / "registry.db").resolve())
    summary = feast_repo.summarize(state)
    assert [v["name"] for v in summary["feature_views"]] == ["v0", "v1"]  # project p only
    assert summary["feature_views"][0]["features"] == {"spend": "Float32"}
    assert summary["feature_views"][0]["ttl_seconds"] == 3600
    assert summary["feature_views"][0]["most_recent_end_time"].startswith("2023-11-14T22:13:20")
    assert summary["entities"] == [{"name": "user", "join_key": "user_id", "value_type": "INT64"}]


def test_a_repo_without_yaml_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no feature_store.yaml"):
        feast_repo.repo_state(str(tmp_path))


def test_forged_registries_are_refused_before_any_object_is_built():
    many = registry_bytes(feast_repo.MAX_OBJECTS + 1)
    with pytest.raises(ValueError, match="the grader reads at most"):
        feast_repo.summarize({"registry": many, "project": "p"})
    with pytest.raises(ValueError, match="larger than"):
        feast_repo.summarize({"registry": b"\0" * (feast_repo.MAX_REGISTRY_BYTES + 1)})
    with pytest.raises(ValueError, match="no registry file"):
        feast_repo.summarize({"registry": b"", "registry_path": "/nowhere"})
    with pytest.raises(ValueError, match="the grader reads up to"):
        fraud.read_registry(registry_bytes(fraud.MAX_OBJECTS + 1))
    with pytest.raises(ValueError, match="KiB"):
        fraud.read_registry(b"\0" * (fraud.MAX_REGISTRY_BYTES + 1))


def test_no_expected_value_of_ex3_is_importable_from_the_harness():
    import grader.harness.freshness_repos as worker_side

    names = set(vars(worker_side))
    assert "install" in names
    assert not names & {"REPOS", "expected_rows", "expected_report", "status", "NOW"}
    oracle = KIT_ROOT / "grader" / "suites" / "ex3_freshness" / "repos.py"
    assert "def expected_report" in oracle.read_text()


def test_the_trusted_side_reads_registries_without_importing_feast(tmp_path):
    # `import feast` costs seconds of CPU per grading child; protobuf parsing needs none of it.
    (tmp_path / "registry.db").write_bytes(registry_bytes(1))
    code = (
        "import sys; from pathlib import Path; from grader.harness import feast_repo, fraud\n"
        "data = Path(sys.argv[1]).read_bytes()\n"
        "summary = feast_repo.summarize({'registry': data, 'project': 'p'})\n"
        "fraud.read_registry(data)\n"
        "assert [v['name'] for v in summary['feature_views']] == ['v0'], summary\n"
        "print(sorted(m for m in sys.modules if m in ('feast.feature_store', 'feast.repo_config')))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "registry.db")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"
