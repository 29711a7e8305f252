"""The warm worker factory that runs inside bubblewrap (the sandbox side of a warm pool).

Started once per batch slot by `grader.warm.Zygote`, it imports pandas, pyarrow and Feast once,
then forks one job per request: a fresh worker that never pays those imports again. Each job,
before any student code runs, enters its own mount, PID and IPC namespaces, hides every other
job's folder (a tmpfs over the pool, with only its own folder bound back), gets a read-only
/tmp (TMPDIR is its own folder), its resource limits, and drops every capability (the
zygote holds CAP_SYS_ADMIN in the sandbox's user namespace only to build these mounts).
Killing a job's first process kills its whole PID namespace, so nothing it started survives.

Control messages (SOCK_SEQPACKET, JSON, file descriptors by SCM_RIGHTS):
  -> {"op": "spawn", "dir": str, "limits": {...}} + [in_fd, out_fd]
  <- {"op": "spawned", "pid": int}
  -> {"op": "kill", "pid": int}
  -> {"op": "killall"}                          (between two submissions, to be sure)
  <- {"op": "ended", "pid": int, "code": int}   (whenever a job ends, killed or not)
  <- {"op": "ready"} once, after the imports.
"""

from __future__ import annotations

import ctypes
import importlib
import json
import os
import resource
import select
import signal
import socket
import sys

CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWIPC = 0x00020000, 0x20000000, 0x08000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT = 1, 2, 4, 32
MS_BIND, MS_MOVE, MS_REC = 4096, 8192, 16384
MS_PRIVATE = 1 << 18
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 24, 38
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
HOLD = "/.fslab-job"

libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    enc = lambda s: s.encode() if s is not None else None  # noqa: E731
    _check(libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data) or None),
           f"mount {target}")  # fmt: skip


def isolate(job_dir: str, pool_root: str) -> None:
    """In a fresh mount namespace: the pool holds only `job_dir`, and /tmp is read-only.

    `HOLD` is an empty mount point the zygote's sandbox provides (`--dir`). /tmp is shared by
    every job of this factory, so no job may write there (jobs get TMPDIR=their folder); it
    is not replaced by a fresh tmpfs because the kit itself may live under /tmp.
    """
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _mount(job_dir, HOLD, None, MS_BIND | MS_REC)
    _mount("tmpfs", pool_root, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=755")
    os.makedirs(job_dir)
    _mount(HOLD, job_dir, None, MS_MOVE)
    _mount(None, "/tmp", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def drop_privileges() -> None:
    """No capabilities, now or ever again (the uid is already unprivileged)."""
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    for cap in range(64):
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)  # fails harmlessly past the last cap
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    header = (ctypes.c_uint32 * 2)(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()
    _check(libc.capset(header, data), "capset")


def run_job(request: dict, in_fd: int, out_fd: int) -> None:
    """The forked job: namespaces, mounts, then a worker as PID 1 of its namespace."""
    _check(libc.unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC), "unshare")
    job_dir = str(request["dir"])
    isolate(job_dir, str(request["pool"]))
    pid = os.fork()
    if pid == 0:
        try:
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            for name, value in request["limits"].items():
                res = getattr(resource, name)
                resource.setrlimit(res, (value, value))
            drop_privileges()
            os.chdir(job_dir)
            os.environ.update({"HOME": job_dir, "TMPDIR": job_dir})
            from grader.worker import serve

            code = serve(in_fd, out_fd)
        except BaseException:  # noqa: BLE001 - a job must never fall back into the zygote loop
            code = 70
        os._exit(code)
    os.close(in_fd)
    os.close(out_fd)
    _, status = os.waitpid(pid, 0)
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF)


def _send(sock: socket.socket, message: dict) -> None:
    sock.send(json.dumps(message).encode())


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ctrl = socket.socket(fileno=int(argv[0]))
    pool_root = argv[1]
    for name in argv[2:]:
        importlib.import_module(name)
    _send(ctrl, {"op": "ready", "threads": len(os.listdir("/proc/self/task"))})
    jobs: dict[int, int] = {}  # pidfd -> pid
    while True:
        ready, _, _ = select.select([ctrl, *jobs], [], [])
        for fd in ready:
            if fd is ctrl:
                data, fds, _flags, _addr = socket.recv_fds(ctrl, 65536, 2)
                if not data:  # the grader went away: so do we and our jobs
                    for pid in jobs.values():
                        os.kill(pid, signal.SIGKILL)
                    return 0
                request = json.loads(data)
                if request["op"] == "spawn" and len(fds) == 2:
                    request["pool"] = pool_root
                    pid = os.fork()
                    if pid == 0:
                        ctrl.close()
                        for pidfd in jobs:
                            os.close(pidfd)
                        try:
                            run_job(request, fds[0], fds[1])
                        except BaseException as exc:  # noqa: BLE001
                            print(f"zygote: job setup failed: {exc!r}", file=sys.stderr, flush=True)
                        finally:
                            os._exit(71)
                    for f in fds:
                        os.close(f)
                    jobs[os.pidfd_open(pid)] = pid
                    _send(ctrl, {"op": "spawned", "pid": pid, "token": request.get("token")})
                elif request["op"] == "kill" and request.get("pid") in jobs.values():
                    os.kill(int(request["pid"]), signal.SIGKILL)
                elif request["op"] == "killall":
                    for pid in jobs.values():
                        os.kill(pid, signal.SIGKILL)
                else:
                    for f in fds:
                        os.close(f)
            else:
                pid = jobs.pop(fd)
                os.close(fd)
                _, status = os.waitpid(pid, 0)
                _send(ctrl, {"op": "ended", "pid": pid, "code": os.waitstatus_to_exitcode(status)})


if __name__ == "__main__":
    sys.exit(main())
