"""What a worker's end means for its items: a death, a timeout kill, a retirement.

Every path that ends a worker goes through `Losses.lose`, which first makes sure the worker is
dead, then reads every whole message it wrote before it died (`drain`), and only then decides:
the item blamed is the one it was running when it died, whatever the chunk size, the cause or
the timing; its other pieces are requeued (a chunk that ran as one message is re-run item by
item to find the culprit); a worker that was never ready fails the whole pool clearly instead
of being respawned forever.
"""

from __future__ import annotations

import sys

from gearshift.errors import TaskError, TaskTimeout, WorkerDied, WorkerStartFailed, signal_name
from gearshift.strategies.processes._handles import Piece, WorkerHandle, kill
from gearshift.strategies.processes._pool_state import PoolState

# How long a worker may take to load a function new to it (importing its module: torch, pandas)
# before its first item's task_timeout starts; past this, that item gets TaskTimeout anyway.
LOAD_SECONDS = 60.0
# How long a new worker may take to be ready (start, run the pool's initializer, which may load
# a model) before it is killed and the pool fails with WorkerStartFailed: an initializer that
# hangs must not hang the pool. Generous, as a slow initializer has no other way to say so.
START_SECONDS = 300.0


class Losses(PoolState):
    """Deadlines, and the accounting of a worker that died, overran or retired."""

    def deadline(self, worker: WorkerHandle) -> float | None:
        """When the item `worker` is running becomes overdue (None: no timeout, or not started)."""
        if not worker.ready or not worker.pieces:
            return None
        piece, timeout = worker.pieces[0], worker.pieces[0].job.task_timeout
        if timeout is not None and piece.loading:  # importing fn's module is not the item's time
            timeout = max(timeout, LOAD_SECONDS)
        return None if timeout is None else piece.item_started + timeout

    def next_deadline(self) -> float | None:
        deadlines = [d for w in self.workers if (d := self.deadline(w)) is not None]
        return min(deadlines, default=None)

    def expire(self, now: float) -> None:
        for worker in list(self.workers):
            deadline = self.deadline(worker)
            if deadline is not None and now >= deadline:
                self.lose(worker, worker.pieces[0].job.task_timeout)
            elif not worker.ready and now >= worker.started + START_SECONDS:
                self.break_pool(self._never_ready(worker))  # the error the pool fails with
                self.lose(worker, None)

    def lose(self, worker: WorkerHandle, timeout: float | None) -> None:
        """A worker died (or overran `timeout`): blame the running item, requeue the rest."""
        if worker not in self.workers:
            return
        overdue = _running(worker) if timeout is not None else None
        kill(worker)  # a no-op for a worker that is dead already
        worker.proc.wait(None)  # dead: everything it wrote is in its socket now
        self.drain(worker)
        self.reap(worker)
        if worker.retiring and not worker.pieces:  # it exited as told, nothing was lost
            return
        self.counts["workers_lost"] += 1
        if not worker.ready:  # it never ran a task: starting workers fails, so would the next
            self.break_pool(self._start_failed(worker))
            self.queue.extendleft(reversed(worker.pieces))  # failed with the pool, below
            return
        if not worker.pieces:
            return
        running, *waiting = worker.pieces
        job, pos = running.job, running.start + running.done
        requeue = [Piece(p.job, p.start, p.stop, p.isolated) for p in waiting]
        if overdue is not None and overdue != (running, pos):
            # the overdue item's result was in the socket: it finished in time after all, and
            # the item the kill interrupted is not to blame either
            requeue.insert(0, Piece(job, pos, running.stop, running.isolated))
        elif running.exact or pos + 1 == running.stop:  # the running item is known
            error: TaskError
            if timeout is not None:
                why = f"ran longer than task_timeout={timeout}s and its worker was killed"
                if running.loading:
                    why = f"did not start: its worker took over {LOAD_SECONDS:g}s to load fn"
                error = job.error_for(pos, TaskTimeout, why, timeout=timeout)
            else:
                pid, code = worker.proc.pid, worker.proc.returncode
                why = f"killed its worker (pid {pid}, {signal_name(code) or f'exit code {code}'})"
                why += self.oom.blame(code)  # "" unless the OOM killer did it
                error = job.error_for(pos, WorkerDied, why, pid=pid, exitcode=code)
            self.finish(job, pos, None, 0.0, error)
            if pos + 1 < running.stop:
                requeue.insert(0, Piece(job, pos + 1, running.stop))
        else:  # the chunk ran as one message: re-run its items one by one to find the culprit
            requeue[:0] = [Piece(job, p, p + 1, isolated=True) for p in range(pos, running.stop)]
        self.queue.extendleft(reversed(requeue))

    def unsent(self, worker: WorkerHandle, piece: Piece) -> None:
        """Sending `piece` failed: the worker is gone and never got it whole, so it goes back
        to the queue, unblamed; the worker is lost as any dead one is."""
        worker.pieces.remove(piece)
        if worker.budget is not None:
            worker.budget += piece.stop - piece.start
        self.queue.appendleft(piece)
        self.lose(worker, None)

    def drain(self, worker: WorkerHandle) -> None:
        """Handle every whole message left in a dead worker's socket, before anyone is blamed:
        results it sent before it died are results, not deaths."""
        for message in worker.conn.read_left():  # memfds of results mapped, given back ones kept
            self.handle(worker, message)

    def _start_failed(self, worker: WorkerHandle) -> WorkerStartFailed:
        code = worker.proc.returncode
        how = signal_name(code) or f"exit code {code}"
        during = " or in the pool's initializer" if self.initializer is not None else ""
        return WorkerStartFailed(
            f"a worker process (pid {worker.proc.pid}, {how}) exited while starting{during}, "
            "before it could run any task, so the pool stopped instead of starting more. Its "
            "error output above says why. Common causes: an initializer that exits or crashes, "
            f"an environment in which {sys.executable} cannot start (PYTHONHOME, PYTHONPATH, "
            "the env given to the pool), or no memory or processes left. Check that "
            f"`{sys.executable} -c 'import cloudpickle'` works, and try strategy='threads'."
        )

    def _never_ready(self, worker: WorkerHandle) -> WorkerStartFailed:
        why = (
            "its initializer has not returned: does it wait for something that never comes (a "
            "lock, a server, input())? Run it alone to see where it blocks"
            if self.initializer is not None
            else "the machine may be out of memory or processes, or far overloaded"
        )
        return WorkerStartFailed(
            f"a worker process (pid {worker.proc.pid}) was not ready {START_SECONDS:g} s after "
            f"it started, so it was killed and the pool stopped: {why}."
        )

    def reap(self, worker: WorkerHandle) -> None:
        if worker in self.workers:
            self.workers.remove(worker)
            for fd in (worker.fd, worker.proc.sentinel):
                if fd is not None:
                    self.poller.unregister(fd)
        worker.proc.wait(None)
        worker.proc.close()
        worker.conn.close()


def _running(worker: WorkerHandle) -> tuple[Piece, int] | None:
    """The piece the worker is running and the position in it, if any."""
    if not worker.pieces:
        return None
    piece = worker.pieces[0]
    return piece, piece.start + piece.done
