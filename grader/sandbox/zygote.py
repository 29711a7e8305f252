"""The warm worker factory that runs inside bubblewrap (the sandbox side of a warm pool).

Started once per batch slot by `grader.sandbox.warm.Zygote`, it imports pandas, pyarrow and
Feast once, then forks one job per request: a fresh worker that never pays those imports again.

A job is built in two steps so that the factory can always kill it whole. A short-lived
"builder" child enters fresh mount, PID, IPC, network and UTS namespaces, hides every other
job's folder (a tmpfs over the pool with only the job's folder bound back), makes /tmp
read-only, forks the job proper as PID 1 of the new PID namespace, reports its pid and exits.
The factory is a child subreaper, so it inherits the job and can signal it directly: killing
the PID 1 of a namespace kills everything in it, whatever the job did to its own signals.
The job then mounts its own /proc (it sees only its own processes: no other job's folder
through /proc/<pid>/root), a private /dev/shm, takes its resource limits, points stdout and
stderr at its own pipe, and drops every capability (the factory holds CAP_SYS_ADMIN in the
sandbox's user namespace only to build these mounts) before any student code is loaded.

Control messages (SOCK_SEQPACKET, JSON, file descriptors by SCM_RIGHTS):
  -> {"op": "spawn", "dir": str, "limits": {...}, "token": str} + [in_fd, out_fd, output_fd]
  <- {"op": "spawned", "pid": int, "token": str} + [pidfd] (pid 0, no pidfd: not built)
  -> {"op": "kill", "pid": int}
  -> {"op": "killall"}                          (between two submissions, to be sure)
  <- {"op": "ended", "pid": int, "code": int}   (whenever a job ends, killed or not)
  <- {"op": "ready"} once, after the imports.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import resource
import select
import signal
import socket
import sys
import tempfile

CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWIPC = 0x00020000, 0x20000000, 0x08000000
CLONE_NEWNET, CLONE_NEWUTS = 0x40000000, 0x04000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_BIND, MS_MOVE, MS_REC = 4096, 8192, 16384
MS_PRIVATE = 1 << 18
PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_SET_CHILD_SUBREAPER = 4, 24, 38, 36
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
PR_SET_SECUREBITS = 28
# SECBIT_NOROOT, SECBIT_NO_SETUID_FIXUP, SECBIT_NO_CAP_AMBIENT_RAISE and their locks.
SECURE_BITS_LOCKED_NOROOT = 0b11 | 0b1100 | 0b11 << 6
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
    """In a fresh mount namespace: the pool holds only `job_dir`; /tmp and /dev are read-only.

    `HOLD` is an empty mount point the zygote's sandbox provides (`--dir`). /tmp is shared by
    every job of this factory, so no job may write there (jobs get TMPDIR=their folder); it
    is not replaced by a fresh tmpfs because the kit itself may live under /tmp.
    """
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _mount(job_dir, HOLD, None, MS_BIND | MS_REC)
    _mount("tmpfs", pool_root, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=755")
    os.makedirs(job_dir)
    _mount(HOLD, job_dir, None, MS_MOVE)
    _mount(
        None, pool_root, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, "size=64k,mode=755"
    )
    _remount_readonly("/tmp")
    _remount_readonly("/dev")  # device nodes stay usable; no files left for the next job


def _remount_readonly(path: str) -> None:
    """Make the mount at `path` read-only in this mount namespace, keeping its other flags
    (statvfs's ST_* bits equal the MS_* bits for these)."""
    keep = os.statvfs(path).f_flag & (MS_NOSUID | MS_NODEV | MS_NOEXEC | 1024 | 2048)
    _mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | keep)


def drop_privileges() -> None:
    """No capabilities, now or ever again.

    The job is uid 0 of the sandbox's user namespace (see
    `grader.sandbox.bubblewrap.bwrap_prefix`), so an exec would normally hand it the bounding
    set again: empty the bounding set, lock the "root is not special" secure bits, and set
    no_new_privs (needs CAP_SETPCAP until here)."""
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    last_cap = int(open("/proc/sys/kernel/cap_last_cap").read())
    for cap in range(last_cap + 1):
        _check(libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), f"drop capability {cap}")
    _check(libc.prctl(PR_SET_SECUREBITS, SECURE_BITS_LOCKED_NOROOT, 0, 0, 0), "securebits")
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    header = (ctypes.c_uint32 * 2)(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()
    _check(libc.capset(header, data), "capset")


def private_proc_and_shm() -> None:
    """In the job (PID 1 of its namespace): a /proc showing only this namespace, with the
    same read-only paths bubblewrap protects, and a /dev/shm of its own."""
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    for path in ("/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus"):
        if os.path.exists(path):
            _mount(path, path, None, MS_BIND | MS_REC)
            _remount_readonly(path)
    if os.path.isdir("/dev/shm"):
        _mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,mode=1777")


def run_job(request: dict, in_fd: int, out_fd: int, output_fd: int) -> None:
    """The job proper: its own /proc and /dev/shm, limits, no capabilities, then the worker."""
    os.dup2(output_fd, 1)
    os.dup2(output_fd, 2)
    os.close(output_fd)
    # Nothing the factory opened reaches the job: only stdio and its two pipes.
    keep = sorted({0, 1, 2, in_fd, out_fd})
    for low, high in zip(keep, [*keep[1:], 65536], strict=True):
        os.closerange(low + 1, high)
    private_proc_and_shm()
    for name, value in request["limits"].items():
        resource.setrlimit(getattr(resource, name), (value, value))
    drop_privileges()
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    from grader.sandbox.worker import lock_down

    lock_down()
    job_dir = str(request["dir"])
    os.chdir(job_dir)
    os.environ.update({"HOME": job_dir, "TMPDIR": job_dir})
    tempfile.tempdir = None  # the factory's imports cached the pool as the temp folder
    from grader.sandbox.worker import serve

    os._exit(serve(in_fd, out_fd))


def build_job(request: dict, fds: list[int], report: int) -> None:
    """The builder: new namespaces and mounts, then fork the job as their PID 1, report its
    pid on `report` and exit (the job is re-parented to the factory, a subreaper)."""
    flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWUTS
    _check(libc.unshare(flags), "unshare")
    isolate(str(request["dir"]), str(request["pool"]))
    pid = os.fork()
    if pid == 0:
        os.close(report)
        try:
            run_job(request, *fds)
        except BaseException as exc:  # noqa: BLE001 - a job must never fall back into the zygote loop
            print(f"zygote: job setup failed: {exc!r}", file=sys.stderr, flush=True)
        os._exit(70)
    os.write(report, pid.to_bytes(4, "little"))


def spawn(request: dict, fds: list[int], jobs: dict[int, int], ctrl: socket.socket) -> int:
    """Build one job; returns its pid (in our PID namespace), or 0 when that failed."""
    report_r, report_w = os.pipe()
    try:
        builder = os.fork()
    except OSError as exc:  # e.g. a job of this slot used up the process limit
        print(f"zygote: cannot fork a job: {exc!r}", file=sys.stderr, flush=True)
        for f in (*fds, report_r, report_w):
            os.close(f)
        return 0
    if builder == 0:
        ctrl.close()
        os.close(report_r)
        for pidfd in jobs:
            os.close(pidfd)
        try:
            build_job(request, fds, report_w)
            os._exit(0)
        except BaseException as exc:  # noqa: BLE001
            print(f"zygote: job setup failed: {exc!r}", file=sys.stderr, flush=True)
        finally:
            os._exit(71)
    os.close(report_w)
    for f in fds:
        os.close(f)
    reported = os.read(report_r, 4)
    os.close(report_r)
    os.waitpid(builder, 0)
    return int.from_bytes(reported, "little") if len(reported) == 4 else 0


def _send(sock: socket.socket, message: dict) -> None:
    sock.send(json.dumps(message).encode())


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ctrl = socket.socket(fileno=int(argv[0]))
    pool_root = argv[1]
    # Jobs outlive their builders; as a subreaper we inherit them, so only we reap and kill them.
    _check(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "subreaper")
    from grader.sandbox import typeguard_cache
    from grader.sandbox.worker import preload

    typeguard_cache.install(record=False)  # read only: jobs run student code
    preload(argv[2:])
    gc.freeze()  # the imports are every job's: its collections skip them, pages stay shared
    _send(ctrl, {"op": "ready", "threads": len(os.listdir("/proc/self/task"))})
    jobs: dict[int, int] = {}  # pidfd -> pid
    while True:
        ready, _, _ = select.select([ctrl, *jobs], [], [])
        for fd in ready:
            if fd is ctrl:
                data, fds, _flags, _addr = socket.recv_fds(ctrl, 65536, 3)
                if not data:  # the grader went away: so do we and our jobs
                    for pid in jobs.values():
                        os.kill(pid, signal.SIGKILL)
                    return 0
                request = json.loads(data)
                if request["op"] == "spawn" and len(fds) == 3:
                    request["pool"] = pool_root
                    pid = spawn(request, fds, jobs, ctrl)
                    answer = {"op": "spawned", "pid": pid, "token": request.get("token")}
                    if pid:
                        pidfd = os.pidfd_open(pid)
                        jobs[pidfd] = pid
                        # The grader reads the job's host pid from it to put it in its group.
                        socket.send_fds(ctrl, [json.dumps(answer).encode()], [pidfd])
                    else:
                        _send(ctrl, answer)
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
