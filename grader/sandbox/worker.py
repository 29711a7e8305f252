"""The sandboxed worker: loads a submission's modules and runs calls on them, answering with data.

Started by `grader.sandbox.bubblewrap` as `python -I -m grader.sandbox.worker IN_FD OUT_FD`
inside bubblewrap. Everything here runs next to untrusted code, so nothing here is trusted by
the grader: it only ever gets back data (see `grader.sandbox.protocol`), which it checks itself.

Requests (JSON header, plus blobs):
  {"op": "load", "path": str, "module": str}
  {"op": "call", "module": str, "function": str, "args": [...], "kwargs": {...},
   "return_args": bool}
  {"op": "harness", "module": str, "target": "module:function", "args": [...], "kwargs": {...}}
      runs trusted helper code from `grader.harness` on the student module (for Feast objects,
      which must be turned into data inside the sandbox).
  {"op": "job", "target": "module:function", "args": [...], "kwargs": {...}}
      runs `grader.harness.<module>.<function>(*args, **kwargs)` in a worker that has loaded
      no student module (refused otherwise): facts read from a submission's files by code it
      could not have replaced.
  {"op": "exit"}
Answers: {"value": ..., "stdout": str, "stderr": str, "elapsed_s": float} or {"error": {...}}.
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import os
import sys
import time
import traceback
from types import ModuleType
from typing import Any

from grader.sandbox import typeguard_cache
from grader.sandbox.protocol import UnsupportedValue, decode, encode, read_message, write_message

OUTPUT_LIMIT = 64 * 1024


class BoundedText(io.TextIOBase):
    """A text sink that keeps the first `limit` characters and counts the rest."""

    def __init__(self, limit: int = OUTPUT_LIMIT) -> None:
        self.parts: list[str] = []
        self.kept = 0
        self.dropped = 0
        self.limit = limit

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        room = self.limit - self.kept
        if room > 0:
            self.parts.append(text[:room])
            self.kept += min(room, len(text))
        self.dropped += max(0, len(text) - max(room, 0))
        return len(text)

    def getvalue(self) -> str:
        tail = f"\n[... {self.dropped} more characters not shown]" if self.dropped else ""
        return "".join(self.parts) + tail


def describe_error(exc: BaseException, module_file: str | None) -> dict[str, Any]:
    """A learner-facing description of an exception: type, message and where in their file."""
    where = None
    if module_file:
        for frame in traceback.extract_tb(exc.__traceback__):
            if frame.filename == module_file:
                where = f"line {frame.lineno}" + (f": {frame.line}" if frame.line else "")
    if isinstance(exc, SyntaxError):
        where = f"line {exc.lineno}"
    return {
        "type": type(exc).__name__,
        "mro": [c.__name__ for c in type(exc).__mro__],
        "message": str(exc)[:2000],
        "where": where,
    }


class Worker:
    """Holds the loaded student modules (one per exercise) and runs requests on them."""

    def __init__(self) -> None:
        self.modules: dict[str, ModuleType] = {}
        self.files: dict[str, str] = {}

    def load(self, path: str, name: str) -> None:
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        self.files[name] = path
        spec.loader.exec_module(module)
        self.modules[name] = module

    def job(self, target: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        """Run a harness function in a worker no student code has touched."""
        if self.modules:
            raise RuntimeError("a job runs only in a worker that loaded no student module")
        mod_name, _, fn_name = target.partition(":")
        helper = importlib.import_module(f"grader.harness.{mod_name}")
        return getattr(helper, fn_name)(*args, **kwargs)

    def handle(self, header: dict[str, Any], blobs: list[bytes]) -> tuple[dict, list[bytes]]:
        op = header.get("op")
        name = str(header.get("module", ""))
        out, err = BoundedText(), BoundedText()
        saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = out, err
        started, cpu_started = time.perf_counter(), time.process_time()
        try:
            if op == "load":
                self.load(str(header["path"]), str(header["module"]))
                value: Any = None
                args: list[Any] = []
            else:
                args = decode(header.get("args", []), blobs)
                kwargs = decode(header.get("kwargs", {}), blobs)
                if op == "job":
                    value = self.job(str(header.get("target", "")), args, kwargs)
                elif name not in self.modules:
                    raise RuntimeError(f"module {name!r} is not loaded")
                else:
                    # Relative paths in student code resolve against its exercise's own folder.
                    os.chdir(os.path.dirname(self.files[name]))
                if op == "job":
                    pass
                elif op == "call":
                    function = getattr(self.modules[name], str(header["function"]))
                    value = function(*args, **kwargs)
                elif op == "harness":
                    mod_name, _, fn_name = str(header["target"]).partition(":")
                    helper = importlib.import_module(f"grader.harness.{mod_name}")
                    value = getattr(helper, fn_name)(self.modules[name], *args, **kwargs)
                else:
                    raise ValueError(f"unknown op {op!r}")
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu_started
        except BaseException as exc:  # noqa: BLE001 - student code may raise anything
            sys.stdout, sys.stderr = saved
            error = describe_error(exc, self.files.get(name))
            return {"error": error, "stdout": out.getvalue(), "stderr": err.getvalue()}, []
        finally:
            sys.stdout, sys.stderr = saved
        blobs_out: list[bytes] = []
        answer: dict[str, Any] = {
            "stdout": out.getvalue(),
            "stderr": err.getvalue(),
            "elapsed_s": elapsed,
            "cpu_s": cpu,
        }
        try:
            answer["value"] = encode(value, blobs_out)
            if header.get("return_args"):
                answer["args_after"] = encode(args, blobs_out)
        except Exception as exc:  # noqa: BLE001 - UnsupportedValue, or Arrow refusing a frame
            what = str(exc) if isinstance(exc, UnsupportedValue) else f"data Arrow rejects ({exc})"
            blobs_out = []
            answer = {
                "error": {
                    "type": "UnsupportedReturn",
                    "mro": ["UnsupportedReturn"],
                    "message": f"returned {what}, which the grader cannot read",
                    "where": None,
                },
                "stdout": answer["stdout"],
                "stderr": answer["stderr"],
            }
        return answer, blobs_out


def preload(names: list[str]) -> None:
    """Pay for the heavy imports before the first timed call.

    prometheus_client comes first, before Feast points it at a multiprocess folder: its
    metrics then stay in memory instead of in shared memory-mapped files that every worker
    forked from a warm factory would inherit (a channel from one submission to the next).
    """
    if "feast" in names:
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        os.environ.pop("prometheus_multiproc_dir", None)
        importlib.import_module("prometheus_client")
    for name in names:
        importlib.import_module(name)


PR_SET_DUMPABLE = 4


def lock_down() -> None:
    """Refuse the system calls student code never needs (see `grader.sandbox.seccomp`); new
    sockets and IPC objects too when the grader asked (`FSLAB_SECCOMP_HOST_NS`: this worker
    shares the host's network and IPC namespaces)."""
    from grader.sandbox import seccomp

    host_namespaces = os.environ.pop("FSLAB_SECCOMP_HOST_NS", "") == "1"
    if host_namespaces:
        # Same host uid as the exercise's job worker: not open to its /proc/<pid>/mem,
        # ptrace or fd theft (no Yama here to stop them).
        import ctypes

        if ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
            raise SystemExit("cannot make the worker non-dumpable")
    if seccomp.supported():
        seccomp.install(host_namespaces)
    elif host_namespaces:  # no filter for this machine: no network cannot be promised, so refuse
        raise SystemExit("no seccomp filter for this machine: cannot refuse the network")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    lock_down()
    typeguard_cache.install(record=False)  # read only: student code may run here later
    preload(argv[2:])
    return serve(int(argv[0]), int(argv[1]))


def serve(in_fd: int, out_fd: int) -> int:
    """Answer requests from `in_fd` on `out_fd` until told to exit."""
    worker = Worker()
    write_message(out_fd, {"ready": True})
    while True:
        header, blobs = read_message(in_fd)
        if header.get("op") == "exit":
            return 0
        answer, out_blobs = worker.handle(header, blobs)
        write_message(out_fd, answer, out_blobs)


if __name__ == "__main__":
    sys.exit(main())
