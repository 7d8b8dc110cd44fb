"""The fork server: a small single-threaded process that forks gearshift's workers on request.

    pool ──(env, cwd, sys.path) + [worker's socket] ──► server ──fork──► worker: serve(socket)
         ◄── pid + [pidfd, exit-status pipe] ─────────────┘  on SIGCHLD: reap, write exit code

`_launch` starts one per pool-owning process, as a fresh interpreter that loads the worker code
once (and cloudpickle once a pool's function needs it), so each worker then starts in a
millisecond or two. It has no threads,
so forking it is safe, unlike forking a pool owner that may have threads holding locks. It exits
when its control socket closes: when the process that started it exits or dies. Loaded by file
path like `_worker`, it imports no part of gearshift.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # signal.py would import enum
import contextlib
import os
import select
import sys
from _pickle import dumps, loads
from _socket import CMSG_SPACE, SCM_RIGHTS, SOL_SOCKET, socket
from struct import Struct

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType

_PID, _CODE, _FDS = Struct("!q"), Struct("!i"), Struct("ii")
MAX_REQUEST = 1 << 20  # bytes: an environment and a sys.path fit many times over


def load(path: str, name: str) -> ModuleType:
    """Execute the source file at `path` as a module that is not part of any package."""
    module = type(sys)(name)
    module.__file__ = path
    with open(path, "rb") as source:
        exec(compile(source.read(), path, "exec"), module.__dict__)
    return module


def serve(control_fd: int, worker_path: str) -> None:
    """Fork a worker for each request on the control socket; exit when it closes."""
    _signal.signal(_signal.SIGINT, _signal.SIG_IGN)  # Ctrl-C is the pool owner's to handle
    worker = load(worker_path, "gearshift_worker")
    for beside in ("_hooks.py", "_capped.py", "_channel.py", "_received.py", "_apart.py"):
        worker.beside(beside)  # loaded here once, not in every worker forked
    control = socket(fileno=control_fd)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    _signal.set_wakeup_fd(wake_w)
    _signal.signal(_signal.SIGCHLD, lambda *_: None)  # a handler, so the wake-up fd is written
    status: dict[int, int] = {}  # worker pid -> write end of its exit-status pipe
    while True:
        ready, _, _ = select.select([control.fileno(), wake_r], [], [])
        if wake_r in ready:
            while _drain(wake_r):
                pass
            _reap(status)
        if control.fileno() not in ready:
            continue
        try:
            message, ancillary, _, _ = control.recvmsg(MAX_REQUEST, CMSG_SPACE(4 * 4))
        except OSError:
            message, ancillary = b"", []
        fds = [
            fd
            for _, _, data in ancillary
            for fd in memoryview(data[: len(data) // 4 * 4]).cast("i")
        ]
        if not message:
            os._exit(0)  # the pool's process is gone
        env, cwd, sys_path, stdio, preload = loads(message)
        std = dict(zip(stdio, fds[1:], strict=False))  # our stdout/stderr -> the pool's
        sys.path[:] = sys_path
        for name in preload:  # imported once here, not in every worker (cloudpickle)
            if name not in sys.modules:
                with contextlib.suppress(ImportError):
                    __import__(name)
        status_r, status_w = os.pipe()
        try:
            pid = os.fork()
        except OSError as exc:
            for fd in [*fds, status_r, status_w]:
                os.close(fd)
            control.sendmsg([b"E" + dumps(str(exc))])
            continue
        if pid == 0:
            closing = [control.fileno(), wake_r, wake_w, status_r, status_w, *status.values()]
            _child(worker, fds[0], std, env, cwd, closing)
        status[pid] = status_w
        pidfd = os.pidfd_open(pid)
        passed = _FDS.pack(pidfd, status_r)
        try:
            control.sendmsg([_PID.pack(pid)], [(SOL_SOCKET, SCM_RIGHTS, passed)])
        except OSError:  # the pool's process is gone; the worker sees its socket close
            os._exit(0)
        for fd in [*fds, pidfd, status_r]:
            os.close(fd)


def _drain(fd: int) -> bool:
    try:
        return bool(os.read(fd, 4096))
    except BlockingIOError:
        return False


def _reap(status: dict[int, int]) -> None:
    """Collect every exited worker and tell its pool how it ended."""
    while True:
        try:
            pid, wait_status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        fd = status.pop(pid, None)
        if fd is not None:
            with contextlib.suppress(OSError):  # the pool stopped listening: nothing to tell
                os.write(fd, _CODE.pack(os.waitstatus_to_exitcode(wait_status)))
            os.close(fd)


def _child(
    worker: ModuleType,
    fd: int,
    stdio: dict[int, int],
    env: dict[str, str],
    cwd: str | None,
    close: list[int],
) -> None:
    """In the forked child: become a worker with the pool's stdout, stderr, environment and
    working directory, as if it were started by the pool right now; never return."""
    try:
        _signal.set_wakeup_fd(-1)
        _signal.signal(_signal.SIGCHLD, _signal.SIG_DFL)
        for target, passed in stdio.items():
            os.dup2(passed, target)
            close.append(passed)
        for other in close:
            os.close(other)
        os.environ.clear()
        os.environ.update(env)
        if cwd is not None:
            with contextlib.suppress(OSError):
                os.chdir(cwd)
        worker.serve(fd)
    except BaseException as exc:
        os.write(2, f"gearshift worker {os.getpid()} failed to start: {exc!r}\n".encode())
    finally:
        os._exit(70)


def main(argv: list[str]) -> None:
    """Entry point (see `_launch.BOOT`): CONTROL_FD WORKER_PATH."""
    serve(int(argv[0]), argv[1])
