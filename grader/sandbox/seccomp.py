"""A small seccomp filter for sandboxed workers: system calls student code never needs.

Refused with EPERM: the kernel keyring calls (`add_key`, `request_key`, `keyctl`: keyrings
are shared with the grader and between jobs, so they would be a channel from one submission
to the next) and `unshare`/`setns` (new namespaces only widen the kernel surface). `clone3`
gets ENOSYS, so the C library falls back to `clone`, whose flags a filter can read: a
`clone` that asks for any new namespace is refused too. io_uring is refused (its requests,
sockets included, would pass the filter unseen). With `host_namespaces` (a worker that shares
the host's network and IPC namespaces and its uid with the job workers: reduced isolation, no
bubblewrap) the filter also stands in for those namespaces: `socket` is refused for every
family (no network, no local service's socket, path or abstract), and so are `connect`,
`bind`, `sendmsg`, `sendmmsg` and a `sendto` with an address, with which a `socketpair`
socket could still reach a datagram service; a `socketpair` itself still works. System V
shared memory, semaphores and message queues and POSIX message queues are refused, since
their objects outlive the process and would be a channel from one submission to the next;
`ptrace`, `process_vm_readv/writev` and `pidfd_getfd` too, which would reach the job worker
that runs as the same user (the worker also makes itself non-dumpable). Everything else is
allowed.

The filter is classic BPF, built here with the standard constants; it needs no library.
It is installed with no_new_privs set, by the worker itself, before any student code loads.
"""

from __future__ import annotations

import ctypes
import errno
import platform
import struct

# Per architecture: the audit arch value and the system call numbers we filter.
_ARCHES = {
    "x86_64": (
        0xC000003E,
        {
            "add_key": 248,
            "request_key": 249,
            "keyctl": 250,
            "unshare": 272,
            "setns": 308,
            "clone": 56,
            "clone3": 435,
            "seccomp": 317,
            "socket": 41,
            "io_uring_setup": 425,
            "io_uring_enter": 426,
            "io_uring_register": 427,
            "connect": 42,
            "bind": 49,
            "sendto": 44,
            "sendmsg": 46,
            "sendmmsg": 307,
            "ptrace": 101,
            "process_vm_readv": 310,
            "process_vm_writev": 311,
            "pidfd_getfd": 438,
            "shmget": 29,
            "shmat": 30,
            "shmctl": 31,
            "semget": 64,
            "semop": 65,
            "semctl": 66,
            "shmdt": 67,
            "msgget": 68,
            "msgsnd": 69,
            "msgrcv": 70,
            "msgctl": 71,
            "semtimedop": 220,
            "mq_open": 240,
            "mq_unlink": 241,
            "mq_timedsend": 242,
            "mq_timedreceive": 243,
            "mq_notify": 244,
            "mq_getsetattr": 245,
        },
    ),  # fmt: skip
    "aarch64": (
        0xC00000B7,
        {
            "add_key": 217,
            "request_key": 218,
            "keyctl": 219,
            "unshare": 97,
            "setns": 268,
            "clone": 220,
            "clone3": 435,
            "seccomp": 277,
            "socket": 198,
            "io_uring_setup": 425,
            "io_uring_enter": 426,
            "io_uring_register": 427,
            "connect": 203,
            "bind": 200,
            "sendto": 206,
            "sendmsg": 211,
            "sendmmsg": 269,
            "ptrace": 117,
            "process_vm_readv": 270,
            "process_vm_writev": 271,
            "pidfd_getfd": 438,
            "mq_open": 180,
            "mq_unlink": 181,
            "mq_timedsend": 182,
            "mq_timedreceive": 183,
            "mq_notify": 184,
            "mq_getsetattr": 185,
            "msgget": 186,
            "msgctl": 187,
            "msgrcv": 188,
            "msgsnd": 189,
            "semget": 190,
            "semctl": 191,
            "semtimedop": 192,
            "semop": 193,
            "shmget": 194,
            "shmctl": 195,
            "shmat": 196,
            "shmdt": 197,
        },
    ),  # fmt: skip
}
_X32_BIT = 0x40000000  # x86_64's x32 ABI: same arch value, numbers with this bit set
_NAMESPACE_FLAGS = 0x7E020000  # CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET
_HOST_ONLY_DENIED = (
    "connect", "bind", "sendmsg", "sendmmsg",  # a socketpair's socket could reach a service
    "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd",  # same-uid neighbours
)  # fmt: skip
_IPC_CALLS = ("shm", "sem", "msg", "mq_")  # name prefixes of the System V and POSIX IPC calls

# BPF opcodes and seccomp return values (linux/filter.h, linux/seccomp.h).
_LD_W_ABS, _JEQ_K, _JGE_K, _JSET_K, _RET_K = 0x20, 0x15, 0x35, 0x45, 0x06
_ALLOW, _ERRNO, _KILL = 0x7FFF0000, 0x00050000, 0x80000000
_NR, _ARCH, _ARG0_LOW, _ARG4_LOW = 0, 4, 16, 48  # offsets in struct seccomp_data (LE)
PR_SET_NO_NEW_PRIVS = 38
SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC = 1, 1


def supported() -> bool:
    """Whether this machine's architecture has a filter here."""
    return platform.machine() in _ARCHES


def program(host_namespaces: bool = False) -> bytes:
    """The filter as an array of `struct sock_filter` (8 bytes each)."""
    audit_arch, nr = _ARCHES[platform.machine()]
    deny = [nr["add_key"], nr["request_key"], nr["keyctl"], nr["unshare"], nr["setns"]]
    deny += [nr["io_uring_setup"], nr["io_uring_enter"], nr["io_uring_register"]]
    if host_namespaces:
        deny += [number for name, number in nr.items() if name.startswith(_IPC_CALLS)]
        deny += [nr[name] for name in _HOST_ONLY_DENIED]
    ops: list[tuple[int, int, int, int]] = [
        (_LD_W_ABS, 0, 0, _ARCH),
        (_JEQ_K, 1, 0, audit_arch),
        (_RET_K, 0, 0, _KILL),  # a foreign ABI (e.g. x32 or 32-bit calls): never allowed
        (_LD_W_ABS, 0, 0, _NR),
        (_JGE_K, 0, 1, _X32_BIT),
        (_RET_K, 0, 0, _KILL),
    ]
    for number in deny:
        ops += [(_JEQ_K, 0, 1, number), (_RET_K, 0, 0, _ERRNO | errno.EPERM)]
    ops += [(_JEQ_K, 0, 1, nr["clone3"]), (_RET_K, 0, 0, _ERRNO | errno.ENOSYS)]
    if host_namespaces:
        ops += [(_JEQ_K, 0, 1, nr["socket"]), (_RET_K, 0, 0, _ERRNO | errno.EACCES)]
        ops += [
            (_JEQ_K, 0, 6, nr["sendto"]),
            (_LD_W_ABS, 0, 0, _ARG4_LOW),  # its destination: NULL is a plain send()
            (_JEQ_K, 0, 3, 0),
            (_LD_W_ABS, 0, 0, _ARG4_LOW + 4),
            (_JEQ_K, 0, 1, 0),
            (_RET_K, 0, 0, _ALLOW),
            (_RET_K, 0, 0, _ERRNO | errno.EPERM),
        ]
    ops += [
        (_JEQ_K, 0, 3, nr["clone"]),
        (_LD_W_ABS, 0, 0, _ARG0_LOW),  # clone's flags (low 32 bits hold every CLONE_NEW*)
        (_JSET_K, 0, 1, _NAMESPACE_FLAGS),
        (_RET_K, 0, 0, _ERRNO | errno.EPERM),
        (_RET_K, 0, 0, _ALLOW),
    ]
    return b"".join(struct.pack("<HBBI", code, jt, jf, k) for code, jt, jf, k in ops)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install(host_namespaces: bool = False) -> None:
    """Set no_new_privs and install the filter on every thread of this process (TSYNC), and
    so on everything they start. Raises OSError if the kernel refuses."""
    if not supported():
        raise OSError(errno.ENOSYS, f"no seccomp filter for {platform.machine()}")
    libc = ctypes.CDLL(None, use_errno=True)
    code = program(host_namespaces)
    buffer = ctypes.create_string_buffer(code, len(code))
    prog = _SockFprog(len(code) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "no_new_privs")
    number = _ARCHES[platform.machine()][1]["seccomp"]
    flags = SECCOMP_FILTER_FLAG_TSYNC
    if libc.syscall(number, SECCOMP_SET_MODE_FILTER, flags, ctypes.byref(prog)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"seccomp: {errno.errorcode.get(err, err)}")
