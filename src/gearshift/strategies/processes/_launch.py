"""How the process pool starts its workers: forked by a fork server, or as fresh interpreters.

    "forkserver" (the default where Linux pidfds exist): the first pool in a process starts one
        small server (a fresh interpreter with the worker code loaded, see `_forkserver`); every
        worker after that is forked from it in a millisecond or two. The server has no threads,
        so this is safe when the pool's process has threads, as plain fork is not.
    "spawn" (elsewhere, or asked for): each worker is a fresh interpreter, `python -c BOOT`.

Either way the worker runs `_worker.serve` on its end of a socket pair whose other end only the
pool holds, so it exits when the pool's process dies; your `__main__` is never re-imported. The
pool sees each worker through a `Proc`: pid, kill, and a `sentinel` fd readable once its exit
code is known (a pidfd for spawned workers, the server's exit-status pipe for forked ones).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pickle
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
from typing import Protocol

from gearshift.strategies.processes._channel import Channel
from gearshift.strategies.processes._received import Home

START_METHODS = ("forkserver", "spawn")
HERE = os.path.dirname(os.path.abspath(__file__))
WORKER_FILE = os.path.join(HERE, "worker.py")
SERVER_FILE = os.path.join(HERE, "_forkserver.py")
WORKER_ENV = "GEARSHIFT_WORKER"  # set in workers: how deeply pools are nested
SERVER_REPLY_SECONDS = 60.0  # a fork takes milliseconds; a server this slow is treated as gone
# Loads a file by path as a module outside any package, then calls its main(argv): a worker does
# not import gearshift (or what gearshift imports) before a task needs it.
BOOT = (
    "import sys; m = type(sys)('gearshift_boot'); m.__file__ = p = sys.argv[1]; "
    "f = open(p, 'rb'); code = compile(f.read(), p, 'exec'); f.close(); "
    "exec(code, m.__dict__); m.main(sys.argv[2:])"
)


class Proc(Protocol):
    """A worker process as the pool sees it."""

    pid: int

    @property
    def returncode(self) -> int | None: ...
    @property
    def sentinel(self) -> int | None: ...
    def poll(self) -> int | None: ...
    def wait(self, timeout: float | None) -> bool: ...
    def kill(self) -> None: ...
    def close(self) -> None: ...


def default_start_method() -> str:
    """The best method here: "forkserver" where the kernel gives pidfds (Linux >= 5.3)."""
    global _default
    if _default is None:
        _default = "forkserver" if _pidfds_work() else "spawn"
    return _default


def _pidfds_work() -> bool:
    if not hasattr(os, "pidfd_open") or not hasattr(signal, "pidfd_send_signal"):
        return False
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:
        return False
    return True


_default: str | None = None


def start_worker(
    method: str, extra_env: dict[str, str], preload: tuple[str, ...] = ()
) -> tuple[Proc, Channel]:
    """Start one worker; the channel is the pool's end of its socket. A fork server imports
    the `preload` modules first, once for all its workers."""
    env = {**os.environ, **extra_env}
    env[WORKER_ENV] = str(int(env.get(WORKER_ENV, "0")) + 1)  # nesting depth, see Processes
    ours, theirs = socket.socketpair()
    try:
        with theirs:
            if method == "forkserver":
                proc: Proc = _fork(env, theirs.fileno(), preload)
            else:
                proc = _spawn(env, theirs)
    except BaseException:
        ours.close()
        raise
    return proc, Channel(ours.detach(), Home())


def _command(path: str, *args: str) -> list[str]:
    flags = subprocess._args_from_interpreter_flags()  # type: ignore[attr-defined]
    return [sys.executable, *flags, "-c", BOOT, path, *args]


def _spawn(env: dict[str, str], theirs: socket.socket) -> Proc:
    fd = theirs.fileno()
    popen = subprocess.Popen(
        _command(WORKER_FILE, str(fd)), pass_fds=[fd], stdin=subprocess.DEVNULL, env=env
    )
    return SpawnedProc(popen)


class SpawnedProc:
    """A worker started as a fresh interpreter: our child, watched through a pidfd."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self.popen, self.pid = popen, popen.pid
        self.pidfd = os.pidfd_open(popen.pid) if _pidfds_work() else None

    @property
    def returncode(self) -> int | None:
        return self.popen.returncode

    @property
    def sentinel(self) -> int | None:
        return self.pidfd

    def poll(self) -> int | None:
        return self.popen.poll()

    def wait(self, timeout: float | None) -> bool:
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def kill(self) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(OSError):
                self.popen.send_signal(signal.SIGKILL)

    def close(self) -> None:
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None


class ForkedProc:
    """A worker forked by the fork server: killed through its pidfd (never a reused pid), its
    exit code read from the status pipe the server writes once it has reaped it."""

    def __init__(self, pid: int, pidfd: int, status_fd: int) -> None:
        self.pid, self.pidfd, self.status_fd = pid, pidfd, status_fd
        self._code: int | None = None

    @property
    def returncode(self) -> int | None:
        return self._code

    @property
    def sentinel(self) -> int | None:
        return self.status_fd

    def poll(self) -> int | None:
        self.wait(0)
        return self._code

    def wait(self, timeout: float | None) -> bool:
        if self._code is None and select.select([self.status_fd], [], [], timeout)[0]:
            data = os.read(self.status_fd, 4)
            if len(data) == 4:
                (self._code,) = struct.unpack("!i", data)
            else:  # the server died before reaping it: make sure it is gone
                self.kill()
                self._code = -signal.SIGKILL
        return self._code is not None

    def kill(self) -> None:
        if self._code is None:
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)

    def close(self) -> None:
        for fd in (self.pidfd, self.status_fd):
            with contextlib.suppress(OSError):
                os.close(fd)


class _ForkServer:
    """The pool owner's handle on its fork server: one request and one reply at a time."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with theirs:
            fd = theirs.fileno()
            command = _command(SERVER_FILE, str(fd), WORKER_FILE)
            self.popen = subprocess.Popen(command, pass_fds=[fd], stdin=subprocess.DEVNULL)
        ours.settimeout(SERVER_REPLY_SECONDS)
        self.sock = ours

    def fork(self, env: dict[str, str], fd: int, preload: tuple[str, ...]) -> ForkedProc:
        try:
            cwd: str | None = os.getcwd()
        except OSError:  # deleted: the worker keeps the server's
            cwd = None
        stdio = [n for n in (1, 2) if _is_open(n)]  # as a spawned worker has: ours, now
        request = pickle.dumps((env, cwd, list(sys.path), stdio, preload))
        passed = struct.pack(f"{1 + len(stdio)}i", fd, *stdio)
        self.sock.sendmsg([request], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, passed)])
        reply, ancillary, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(8))
        fds = [f for _, _, data in ancillary for f in struct.unpack(f"{len(data) // 4}i", data)]
        if not reply:
            raise ConnectionError("the fork server exited")
        if reply[:1] == b"E" or len(fds) != 2:  # an orphaned worker sees its socket close
            for f in fds:
                os.close(f)
            why = pickle.loads(reply[1:]) if reply[:1] == b"E" else "a reply without its fds"
            raise OSError(f"the fork server could not fork a worker: {why}")
        (pid,) = struct.unpack("!q", reply)
        return ForkedProc(pid, fds[0], fds[1])

    def close(self) -> None:
        self.sock.close()  # the server exits when it sees this
        try:
            self.popen.wait(2.0)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


_lock = threading.Lock()
_server: _ForkServer | None = None


def _fork(env: dict[str, str], fd: int, preload: tuple[str, ...]) -> Proc:
    """Ask this process's fork server for a worker, (re)starting the server when needed."""
    global _server
    with _lock:
        for attempt in (1, 2):
            if _server is None:
                _server = _ForkServer()
            try:
                return _server.fork(env, fd, preload)
            except (OSError, ConnectionError):  # the server died (or was killed): start another
                stale, _server = _server, None
                stale.close()
                if attempt == 2:
                    raise
    raise AssertionError("unreachable")


def _forget_after_fork() -> None:
    """In a forked child: the parent's server is not ours; let it see EOF when the parent exits."""
    global _server, _lock
    _lock = threading.Lock()
    if _server is not None:
        with contextlib.suppress(OSError):
            _server.sock.close()
        _server.popen.returncode = 0  # not this process's child: never wait for it
        _server = None


@atexit.register
def _stop_server() -> None:
    global _server
    if _server is not None:
        _server.close()
        _server = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)
