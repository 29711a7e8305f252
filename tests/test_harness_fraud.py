"""ex1's public and hidden suites share one apply of the student's objects."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.harness import fraud
from grader.sandbox.proxy import StudentTimeout


class FlakyStudent:
    """A proxy whose first apply times out after leaving a half-written repo behind."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.calls = 0

    def harness(self, target, data_dir, repo, cwd, _timeout):
        self.calls += 1
        Path(repo).mkdir(parents=True, exist_ok=True)
        (Path(repo) / "feature_store.yaml").write_text(fraud.CONFIG)
        raise StudentTimeout("no answer within 120 s: the call was stopped")


def test_a_timed_out_apply_is_reported_the_same_way_to_both_suites(tmp_path):
    student = FlakyStudent(tmp_path)
    for _suite in ("public", "hidden"):
        with pytest.raises(StudentTimeout, match="no answer"):
            fraud.applied_registry(student, tmp_path / "data", "repo")
    assert student.calls == 1  # not re-applied into the folder the first try left behind


def test_the_historical_job_never_loads_the_registrys_pickled_code(lab, tmp_path, monkeypatch):
    import importlib.util

    import pandas as pd
    from feast.on_demand_feature_view import OnDemandFeatureView

    spec = importlib.util.spec_from_file_location(
        "ex1_solution", lab.root / "solutions" / "ex1_fraud_design" / "fraud_design.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.chdir(tmp_path)  # historical changes the current folder
    repo = tmp_path / "repo"
    applied = fraud.apply_definitions(module, str(lab.data_dir), str(repo))

    loaded = []
    original = OnDemandFeatureView.from_proto.__func__

    def counting(cls, *args, **kwargs):
        loaded.append(args[0].spec.name)
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(OnDemandFeatureView, "from_proto", classmethod(counting))
    txns = pd.read_parquet(lab.data_dir / "fraud" / "transactions.parquet").head(20)
    entity = txns[["user_id", "merchant_id", "amount", "event_timestamp"]]
    frame = fraud.historical(str(repo), entity, registry=applied["registry"])
    assert {"avg_amount_7d", "is_high_risk"} <= set(frame.columns) and len(frame) == 20
    assert loaded == []  # the service's training frame never unpickled the on-demand view
    with pytest.raises(Exception, match=fraud.ODFV):
        fraud.historical(
            str(repo), entity, [f"{fraud.ODFV}:{fraud.RATIO}"], registry=applied["registry"]
        )
    assert loaded == []
    ratio = fraud.historical_here(None, str(repo), entity, [f"{fraud.ODFV}:{fraud.RATIO}"])
    assert fraud.RATIO in ratio.columns and fraud.ODFV in loaded


def test_the_historical_job_reads_no_file_the_students_worker_could_rewrite(
    lab, tmp_path, monkeypatch
):
    # The student's worker lives on beside the job and shares its folder: a config naming a
    # store class of its own, or a registry swapped after the apply, must change nothing.
    import importlib.util
    import sys

    import pandas as pd

    spec = importlib.util.spec_from_file_location(
        "ex1_solution", lab.root / "solutions" / "ex1_fraud_design" / "fraud_design.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.chdir(tmp_path)
    repo = tmp_path / "repo"
    applied = fraud.apply_definitions(module, str(lab.data_dir), str(repo))
    (tmp_path / "planted_store.py").write_text("raise SystemExit('student code ran')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    (repo / "feature_store.yaml").write_text(
        fraud.CONFIG.replace("type: duckdb", "type: planted_store.Store")
    )
    (repo / "registry.db").write_bytes(b"not a registry")
    txns = pd.read_parquet(lab.data_dir / "fraud" / "transactions.parquet").head(5)
    entity = txns[["user_id", "merchant_id", "amount", "event_timestamp"]]
    frame = fraud.historical(str(repo), entity, registry=applied["registry"])
    assert len(frame) == 5 and "avg_amount_7d" in frame.columns
    assert "planted_store" not in sys.modules
    assert (repo / "registry.db").read_bytes() == b"not a registry"


def test_code_anywhere_in_the_registry_never_runs_in_the_historical_job(lab, tmp_path, monkeypatch):
    # Found by an attacker review: a nested source view carries a UDF of its own, which
    # Feast executes when it reads the view. The job keeps what a training frame needs only.
    import importlib.util

    import pandas as pd
    from feast.protos.feast.core.Registry_pb2 import Registry

    spec = importlib.util.spec_from_file_location(
        "ex1_solution", lab.root / "solutions" / "ex1_fraud_design" / "fraud_design.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.chdir(tmp_path)
    applied = fraud.apply_definitions(module, str(lab.data_dir), str(tmp_path / "repo"))
    registry = Registry.FromString(applied["registry"])
    marker = tmp_path / "student-code-ran"
    view = registry.feature_views[0]
    snapshot = type(view.spec)()
    snapshot.CopyFrom(view.spec)  # (a message copied into its own field would recurse)
    nested = view.spec.source_views.add()
    nested.CopyFrom(snapshot)
    nested.name = "nested"
    udf = nested.feature_transformation.user_defined_function
    udf.name = "pwn"
    udf.body_text = f"open({str(marker)!r}, 'w').write('x')\ndef pwn(df):\n    return df\n"
    service_only = Registry()
    service_only.CopyFrom(registry)
    projection = service_only.feature_services[0].spec.features[0]
    projection.batch_source.type = projection.batch_source.CUSTOM_SOURCE
    projection.batch_source.data_source_class_type = "planted_module.Source"
    other = registry.feature_views[1]
    other.spec.batch_source.type = other.spec.batch_source.CUSTOM_SOURCE
    other.spec.batch_source.data_source_class_type = "planted_module.Source"
    txns = pd.read_parquet(lab.data_dir / "fraud" / "transactions.parquet").head(5)
    entity = txns[["user_id", "merchant_id", "amount", "event_timestamp"]]
    frame = fraud.historical(
        str(tmp_path / "repo"), entity, [f"{view.spec.name}:avg_amount_7d"],
        registry=registry.SerializeToString(),
    )  # fmt: skip
    assert len(frame) == 5 and "avg_amount_7d" in frame.columns
    assert not marker.exists()
    with pytest.raises(Exception, match=other.spec.name):  # a view of no file: unknown here
        fraud.historical(
            str(tmp_path / "repo"), entity, [f"{other.spec.name}:is_high_risk"],
            registry=registry.SerializeToString(),
        )  # fmt: skip
    # A service's projection naming a source class of its own: ignored, never imported
    # (an import of a module that does not exist would fail the retrieval).
    service_frame = fraud.historical(
        str(tmp_path / "repo"), entity, registry=service_only.SerializeToString()
    )
    assert len(service_frame) == 5 and not marker.exists()
