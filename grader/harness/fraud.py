"""Harness of ex1_fraud_design: apply a student's Feast objects and read them back as data.

Two halves:

* `apply_definitions` runs INSIDE the sandboxed worker, next to the student's module
  (`function(student_module, ...)`): Feast objects cannot leave it, so it returns the registry
  file's bytes, which the trusted side re-parses within size caps. `historical` runs in a
  fresh job that never loaded the student's module (`student.job`, via `training_frame`) and
  returns plain frames. Feast would run code carried in the registry (the on-demand view's
  dill pickle, any view's transformation) whenever it lists it: the job serves Feast an
  allow-listed copy of the registry bytes the trusted side judged (`_without_code`), reading
  no file of the repo folder, so no student code runs in it. Frames of the on-demand view
  itself need the student's UDF: `historical_here` builds them in the student's own worker,
  and the suites judge its output against their own expectations.
* `read_registry`, `applied_registry`: run on the TRUSTED side (the suites). They parse the
  registry bytes with the protobuf classes only (never `from_proto`: an on-demand view carries
  dill-pickled student code) and return plain dicts for the suites to judge.

Nothing here imports feast at module level: the worker pays for it once, in its preload.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

from grader.harness.protos import registry_protos

PROJECT = "fraud"
SERVICE = "fraud_detection_v1"
ODFV = "transaction_risk"
RATIO = "amount_to_avg_7d_ratio"
USER_FILE = "user_txn_stats.parquet"
MERCHANT_FILE = "merchant_stats.parquet"
#: Feature -> kind ("int": Int64 only; "float": Float32 or Float64), per source file.
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
FEATURES_OF_FILE = {USER_FILE: USER_FEATURES, MERCHANT_FILE: MERCHANT_FEATURES}
KEY_OF_FILE = {USER_FILE: "user_id", MERCHANT_FILE: "merchant_id"}

MAX_REGISTRY_BYTES = 2 * 1024 * 1024
"""The reference's registry is a few KiB (its on-demand view's pickled code included)."""
MAX_OBJECTS = 200
"""Registered objects the trusted side reads out of a registry, at most."""

CONFIG = f"""\
project: {PROJECT}
provider: local
registry: registry.db
online_store:
  type: sqlite
  path: online_store.db
offline_store:
  type: duckdb
entity_key_serialization_version: 3
"""


# ------------------------------------------------------------------ inside the worker


def apply_definitions(
    module: Any, data_dir: str, repo_dir: str, cwd: str | None = None
) -> dict[str, Any]:
    """`FeatureStore.apply(module.build_definitions(Path(data_dir)))` into a new empty repo.

    `cwd`: the current directory while build_definitions runs (a relative `data_dir` is
    relative to it). Returns `{"registry": <registry file bytes>, "object_types": [names]}`.
    """
    before = os.getcwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        objects = module.build_definitions(Path(data_dir))
    finally:
        os.chdir(before)
    if not isinstance(objects, list | tuple):
        raise TypeError(
            f"build_definitions returned a {type(objects).__name__}, expected a list of "
            "Feast objects"
        )
    objects = list(objects)
    types = [type(o).__name__ for o in objects]
    repo = Path(repo_dir)
    if repo.exists() and any(repo.iterdir()):
        raise RuntimeError(f"grader error: {repo} is not empty")
    repo.mkdir(parents=True, exist_ok=True)
    (repo / "feature_store.yaml").write_text(CONFIG, encoding="utf-8")

    from feast import FeatureStore

    try:
        FeatureStore(repo_path=str(repo)).apply(objects)
    except Exception as exc:  # noqa: BLE001 - the learner needs Feast's reason, whatever it is
        raise RuntimeError(
            f"FeatureStore.apply of the {len(objects)} objects it returned ({', '.join(types)}) "
            f"into an empty repo failed with {type(exc).__name__}: {exc}"
        ) from None
    registry = repo / "registry.db"
    return {"registry": registry.read_bytes() if registry.is_file() else b"", "object_types": types}


def historical(
    repo_dir: str,
    entity_df: Any,
    features: list[str] | None = None,
    *,
    udfs: bool = False,
    registry: bytes | None = None,
) -> Any:
    """The training frame of `entity_df` from the applied repo (duckdb offline store).

    Runs in a JOB (`student.job`): a fresh worker that never loaded the student's module. It
    reads no file of the repo folder, which the student's own worker could still be
    rewriting: the config is the grader's own `CONFIG` (a config may name a store class,
    which Feast would import), and the registry is `registry`, the bytes `apply_definitions`
    returned and the trusted side judged (`training_frame` passes them). `features` None
    means the feature service `fraud_detection_v1`; otherwise Feast feature references such
    as `"user_txn_stats:avg_amount_7d"`. Without `udfs` Feast never sees the registry's
    pickled code (on-demand and stream views, view transformations): references to an
    on-demand view then fail as unknown (see `historical_here`).
    """
    import yaml
    from feast import FeatureStore, RepoConfig

    repo = Path(repo_dir)
    if registry is None:  # `historical_here`: the student's own worker, its own files
        registry = (repo / "registry.db").read_bytes()
    # The current folder the student's worker had (its exercise folder), for relative paths.
    os.chdir(repo.parent)
    store = FeatureStore(config=RepoConfig(repo_path=repo, **yaml.safe_load(CONFIG)))
    _serve_registry(store, registry, udfs=udfs)
    wanted: Any = store.get_feature_service(SERVICE) if features is None else list(features)
    frame = store.get_historical_features(entity_df=entity_df, features=wanted).to_df()
    return frame.reset_index(drop=True)


def historical_here(_module: Any, repo_dir: str, entity_df: Any, features: list[str]) -> Any:
    """`historical` with the student's on-demand view, in the student's OWN worker
    (`student.harness`): its UDF is student code, so it runs where student code already
    ran, and what comes back is judged like any answer."""
    return historical(repo_dir, entity_df, features, udfs=True)


FILE_SOURCE, REQUEST_SOURCE = 1, 7
"""`DataSource.SourceType` values the job keeps: a file, and a request schema (no code, no
class named by the registry to import)."""


def _without_code(proto: Any) -> Any:
    """A registry holding only what a training frame through file-backed feature views
    needs: entities, file and request sources, feature views without transformations or
    source views (a view reading anything but a file is left out) and feature services.
    Everything else (on-demand and stream views, validation profilers, saved datasets,
    infra, version history) may carry code or name classes to import, and is dropped."""
    clean = type(proto)()
    for name in ("registry_schema_version", "version_id"):
        setattr(clean, name, getattr(proto, name))
    clean.last_updated.CopyFrom(proto.last_updated)
    clean.entities.extend(proto.entities)
    clean.feature_services.extend(proto.feature_services)
    for service in clean.feature_services:  # a projection may name a source of its own
        for projection in service.spec.features:
            for field in ("batch_source", "stream_source"):
                if projection.HasField(field) and getattr(projection, field).type != FILE_SOURCE:
                    projection.ClearField(field)
    clean.project_metadata.extend(proto.project_metadata)
    clean.projects.extend(proto.projects)
    clean.data_sources.extend(
        s for s in proto.data_sources if s.type in (FILE_SOURCE, REQUEST_SOURCE)
    )
    for view in proto.feature_views:
        if view.spec.batch_source.type != FILE_SOURCE:
            continue
        kept = clean.feature_views.add()
        kept.CopyFrom(view)
        for field in ("feature_transformation", "stream_source"):
            kept.spec.ClearField(field)
        del kept.spec.source_views[:]
    return clean


def _serve_registry(store: Any, data: bytes, *, udfs: bool) -> None:
    """Give `store` a file registry that answers every read from `data`, parsed once here,
    and never touches a file. Without `udfs` it holds only what a training frame needs
    (`_without_code`): an allow-list, not a list of what to remove, since Feast carries code
    in more places than one remembers.
    Every registry read of Feast 0.67's file registry goes through `_get_registry_proto`,
    which serves our copies; the store never builds a registry of its config's kind."""
    from feast.infra.registry.registry import Registry
    from feast.protos.feast.core.Registry_pb2 import Registry as RegistryProto

    if len(data) > MAX_REGISTRY_BYTES:
        raise ValueError(f"the registry is {len(data) // 1024} KiB, more than a registry can need")
    proto = RegistryProto.FromString(data)
    if not udfs:
        proto = _without_code(proto)
    registry = Registry(PROJECT, None, None)  # no registry config: no store, no file

    def served(*_args: Any, **_kwargs: Any) -> Any:
        copy_ = RegistryProto()
        copy_.CopyFrom(proto)
        return copy_

    registry._get_registry_proto = served
    registry.cached_registry_proto = served()
    registry._feature_service_cache = store._feature_service_cache
    store._registry = registry


# ------------------------------------------------------------------ on the trusted side


def read_registry(data: bytes) -> dict[str, Any]:
    """Plain data from registry protobuf bytes (no user code runs: protobuf parsing only).

    Raises `ValueError` when the bytes are not a registry.
    """
    Registry, ValueType = registry_protos()
    from google.protobuf.message import DecodeError

    if not isinstance(data, bytes) or not data:
        raise ValueError("the registry file is missing or empty")
    # The bytes came from the student's worker: cap them before parsing, and the objects
    # before building a dict per object (a forged registry of a million empty views).
    if len(data) > MAX_REGISTRY_BYTES:
        raise ValueError(
            f"the registry file is {len(data) // 1024} KiB, more than the "
            f"{MAX_REGISTRY_BYTES // 1024} KiB a registry of this exercise can need"
        )
    try:
        registry = Registry.FromString(data)
    except DecodeError as exc:
        raise ValueError(f"the registry file is not a Feast registry: {exc}") from None
    count = sum(
        len(part)
        for part in (
            registry.entities,
            registry.feature_views,
            registry.feature_services,
            registry.on_demand_feature_views,
            registry.data_sources,
        )
    )
    if count > MAX_OBJECTS:
        raise ValueError(
            f"the registry holds {count} objects; this exercise needs a few dozen at most "
            f"(the grader reads up to {MAX_OBJECTS})"
        )

    def type_name(value: int) -> str:
        try:
            return ValueType.Enum.Name(value)
        except ValueError:
            return str(value)

    entities = {}
    for entity in registry.entities:
        spec = entity.spec
        entities[spec.name] = {
            "name": spec.name,
            "join_key": spec.join_key,
            "value_type": type_name(spec.value_type),
        }

    def source(proto: Any) -> dict[str, Any]:
        return {
            "name": proto.name,
            "kind": proto.WhichOneof("options") or "",
            "uri": proto.file_options.uri,
            "timestamp_field": proto.timestamp_field,
            "created_timestamp_column": proto.created_timestamp_column,
            "field_mapping": dict(proto.field_mapping),
        }

    views = []
    for view in registry.feature_views:
        spec = view.spec
        views.append(
            {
                "name": spec.name,
                "entities": list(spec.entities),
                "join_keys": sorted(
                    entities[e]["join_key"] if e in entities else e for e in spec.entities
                ),
                "entity_columns": [c.name for c in spec.entity_columns],
                "features": {f.name: type_name(f.value_type) for f in spec.features},
                "ttl_seconds": spec.ttl.seconds + spec.ttl.nanos / 1e9,
                "online": bool(spec.online),
                "description": spec.description,
                "tags": dict(spec.tags),
                "owner": spec.owner,
                "source": source(spec.batch_source),
                "file": Path(spec.batch_source.file_options.uri).name,
            }
        )

    services = []
    for service in registry.feature_services:
        spec = service.spec
        services.append(
            {
                "name": spec.name,
                "features": [
                    (p.feature_view_name_alias or p.feature_view_name, c.name)
                    for p in spec.features
                    for c in p.feature_columns
                ],
            }
        )

    odfvs = []
    for odfv in registry.on_demand_feature_views:
        spec = odfv.spec
        request_fields: dict[str, str] = {}
        inputs: list[tuple[str, str]] = []
        for src in spec.sources.values():
            kind = src.WhichOneof("source")
            if kind == "request_data_source":
                for field in src.request_data_source.request_data_options.schema:
                    request_fields[field.name] = type_name(field.value_type)
            elif kind == "feature_view":
                fv = src.feature_view.spec
                inputs += [(fv.name, f.name) for f in fv.features]
            elif kind == "feature_view_projection":
                proj = src.feature_view_projection
                inputs += [(proj.feature_view_name, c.name) for c in proj.feature_columns]
        odfvs.append(
            {
                "name": spec.name,
                "features": {f.name: type_name(f.value_type) for f in spec.features},
                "request_fields": request_fields,
                "inputs": inputs,
                "mode": spec.mode,
            }
        )

    return {
        "entities": sorted(entities.values(), key=lambda e: e["name"]),
        "feature_views": sorted(views, key=lambda v: v["name"]),
        "feature_services": sorted(services, key=lambda s: s["name"]),
        "on_demand_feature_views": sorted(odfvs, key=lambda o: o["name"]),
        "data_sources": sorted(s.name for s in registry.data_sources),
    }


APPLIED = "Applied build_definitions(data_dir) into an empty Feast repo"


_REGISTRY_BYTES: dict[tuple[int, str], bytes] = {}
"""The registry each apply returned, by (proxy, folder): what `training_frame` reads."""
_APPLIED: dict[tuple[int, str, str, str | None], dict[str, Any] | Exception] = {}


def applied_registry(
    student: Any, data_dir: Any, folder: str, cwd: Path | None = None
) -> dict[str, Any]:
    """Apply the student's objects into `student.workdir / folder` and summarize the registry.

    Trusted side. Raises `AssertionError` with a learner-facing message when build_definitions
    or the apply fails (timeouts and crashes pass through as they are). The same apply asked
    for again (the public and the hidden suite both need it) is answered from the first one,
    failure included: a grading process serves one submission only.
    """
    from grader.sandbox.proxy import StudentProblem

    key = (id(student), str(data_dir), folder, None if cwd is None else str(cwd))
    if key not in _APPLIED:
        try:
            _APPLIED[key] = _apply_and_read(student, data_dir, folder, cwd)
        except (AssertionError, StudentProblem) as exc:  # a timeout or crash counts too:
            _APPLIED[key] = exc  # the repo folder is no longer empty for a second try
    result = _APPLIED[key]
    if isinstance(result, Exception):
        raise result
    return copy.deepcopy(result)  # each suite may take its summary apart


def training_frame(
    student: Any, folder: str, entity_df: Any, features: list[str] | None = None
) -> Any:
    """Trusted side: `historical` in the exercise's job worker over the registry that the
    student's apply into `student.workdir / folder` returned (as `applied_registry` judged
    it), never over the repo folder's files. Raises what `student.job` raises, and
    `AssertionError` when that apply has not happened or failed."""
    registry = _REGISTRY_BYTES.get((id(student), folder))
    if registry is None:
        raise AssertionError(f"{APPLIED}: there is no applied registry to read.")
    return student.job(
        "fraud:historical", str(student.workdir / folder), entity_df, features,
        registry=registry, _timeout=180,
    )  # fmt: skip


def _apply_and_read(student: Any, data_dir: Any, folder: str, cwd: Path | None) -> dict[str, Any]:
    from grader.sandbox.proxy import StudentError

    repo = student.workdir / folder
    try:
        out = student.harness(
            "fraud:apply_definitions",
            str(data_dir),
            str(repo),
            None if cwd is None else str(cwd),
            _timeout=120,
        )
    except StudentError as exc:
        if exc.not_implemented:
            raise AssertionError(
                "Not done yet: build_definitions still raises NotImplementedError."
            ) from None
        where = f" ({exc.where})" if exc.where else ""
        raise AssertionError(
            f"{APPLIED}: it failed with {exc.type_name}: {exc.message}{where}. Every check reads "
            "that registry, so this comes first: return every object you use (entities, "
            "sources, views, services) and nothing that needs anything else registered."
        ) from None
    if not isinstance(out, dict) or not isinstance(out.get("registry"), bytes):
        raise AssertionError(f"{APPLIED}: the grader got no registry back.")
    try:
        summary = read_registry(out["registry"])
    except ValueError as exc:
        raise AssertionError(f"{APPLIED}: {exc}.") from None
    _REGISTRY_BYTES[(id(student), folder)] = out["registry"]
    types = out.get("object_types")
    summary["object_types"] = [str(t) for t in types] if isinstance(types, list) else []
    # Feast registers a placeholder entity of its own for views without entities.
    summary["entities"] = [e for e in summary["entities"] if not e["name"].startswith("__dummy")]
    return summary
