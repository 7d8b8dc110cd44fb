"""Big buffers travel to process workers and back zero-copy, in memfds (_channel, _apart)."""

from __future__ import annotations

import contextlib
import os
import pickle
import socket
from typing import Any

import numpy as np
import pytest

import gearshift
from gearshift import TaskFailed, UsageError
from gearshift.strategies.processes import _channel, _pickling, _received
from gearshift.strategies.processes._apart import split
from gearshift.strategies.processes._handles import Spares
from gearshift.strategies.processes._launch import START_METHODS

pytestmark = pytest.mark.skipif(not _channel.ZERO_COPY, reason="memfds are Linux's")

MB = 1 << 20


def big(n: int = 4, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.random(MB // 2) for _ in range(n)]  # 4 MiB each


def how_it_arrived(a: np.ndarray) -> tuple[bool, float]:
    return a.flags.writeable, float(a.sum())


def double(a: np.ndarray) -> np.ndarray:
    return a * 2


def write_into(a: np.ndarray) -> None:
    a[0] = 1.0


def kind(x: Any) -> tuple[str, int]:
    return type(x).__name__, len(x)


def memfds_open() -> set[int]:
    """This process's descriptors of gearshift memfds (other tests' threads may open others)."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # closed since it was listed
            if os.readlink(f"/proc/self/fd/{fd}").startswith("/memfd:gearshift"):
                found.add(int(fd))
    return found


def memfds_mapped() -> int:
    with open("/proc/self/maps") as maps:
        return sum("memfd:gearshift" in line for line in maps)


@pytest.mark.parametrize("method", START_METHODS)
def test_arrays_arrive_read_only_and_results_come_home_writable(method: str) -> None:
    arrays = big()
    pool = gearshift.Processes(2, start_method=method)
    got = gearshift.map(how_it_arrived, arrays, strategy=pool)
    assert got == [(False, float(a.sum())) for a in arrays]  # read-only: zero-copy
    doubled = gearshift.map(double, arrays, strategy=pool)
    assert all(np.array_equal(d, a * 2) for d, a in zip(doubled, arrays, strict=True))
    assert all(d.flags.writeable for d in doubled)  # copy-on-write mappings of the memfds
    assert memfds_mapped() >= 1
    doubled[0][:] = 0  # private to this process
    del doubled
    assert memfds_mapped() == 0  # each mapping went with the last array using it


def test_small_buffers_and_zero_copy_off_travel_as_before() -> None:
    small = [np.arange(10.0)] * 3
    assert gearshift.map(how_it_arrived, small, strategy="processes") == [(True, 45.0)] * 3
    off = gearshift.Processes(2, zero_copy_bytes=None)
    assert gearshift.map(how_it_arrived, big(2), strategy=off)[0][0] is True


def test_the_threshold_is_the_buffers_size() -> None:
    arrays = [np.zeros(1000), np.zeros(2000)]  # 8 and 16 kB
    pool = gearshift.Processes(2, zero_copy_bytes=10_000)
    assert [w for w, _ in gearshift.map(how_it_arrived, arrays, strategy=pool)] == [True, False]


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "1MB"])
def test_zero_copy_bytes_is_checked(bad: Any) -> None:
    with pytest.raises(UsageError, match="zero_copy_bytes"):
        gearshift.Processes(zero_copy_bytes=bad)


def test_bytes_bytearray_and_memoryview_arrive_as_they_did_through_the_socket() -> None:
    items = [b"x" * (2 * MB), bytearray(2 * MB), memoryview(b"y" * (2 * MB)), (b"z" * MB, 1)]
    got = gearshift.map(kind, items[:3], strategy="processes")
    assert got == [("bytes", 2 * MB), ("bytearray", 2 * MB), ("bytes", 2 * MB)]
    assert gearshift.map(len, items[3:], strategy="processes") == [2]


def test_big_bytes_results_come_home() -> None:
    got = gearshift.map(os.urandom, [3 * MB, 10], strategy="processes")
    assert [type(g) for g in got] == [bytes, bytes] and [len(g) for g in got] == [3 * MB, 10]


@pytest.mark.parametrize("method", START_METHODS)
def test_writing_into_an_input_says_why_it_is_read_only_and_what_to_do(method: str) -> None:
    pool = gearshift.Processes(1, start_method=method)
    with pytest.raises(TaskFailed) as caught:
        gearshift.map(write_into, big(1), strategy=pool)
    message = str(caught.value)
    assert "assignment destination is read-only" in message
    assert "a = a.copy()" in message and "zero_copy_bytes=None" in message
    assert isinstance(caught.value.__cause__, ValueError)


def test_executor_submit_sends_its_arguments_zero_copy() -> None:
    arrays = big(2)
    with gearshift.Executor(2, strategy="processes") as ex:
        assert ex.submit(how_it_arrived, arrays[0]).result(timeout=60)[0] is False
        assert list(ex.map(how_it_arrived, arrays)) == [(False, float(a.sum())) for a in arrays]
        assert np.array_equal(ex.submit(double, a=arrays[1]).result(timeout=60), arrays[1] * 2)


def test_the_pool_refills_the_memfds_its_workers_give_back(monkeypatch: pytest.MonkeyPatch) -> None:
    created = []
    make = os.memfd_create

    def counted(name: str, flags: int = 0) -> int:
        created.append(name)
        return make(name, flags)

    monkeypatch.setattr(os, "memfd_create", counted)
    arrays = big(8)
    pool = gearshift.Processes(1, start_method="spawn")  # spawn: our own results' memfds only
    got = gearshift.map(how_it_arrived, arrays, strategy=pool, chunksize=1)
    assert got == [(False, float(a.sum())) for a in arrays]
    sent = [name for name in created if name != "gearshift-probe"]
    assert 1 <= len(sent) <= 2  # one, and one more for a chunk sent ahead


# ---- the channel itself, on a real socket pair ---------------------------------------------


def pair(spares: Spares | None = None) -> tuple[_channel.Channel, _channel.Channel]:
    a, b = socket.socketpair()
    home = _channel.Channel(a.detach(), _received.Home(), spares)
    return home, _channel.Channel(b.detach(), _received.Kept())


def test_a_worker_gives_an_input_memfd_back_once_nothing_maps_it() -> None:
    spares = Spares(4)
    home, worker = pair(spares)
    kept = worker.received
    assert isinstance(kept, _received.Kept)
    areas = []
    try:
        for keep in (False, False, True):
            data, buffers = split(_pickling.dumps, big(1, seed=len(areas)), MB)
            home.send(data, b"", buffers)
            sent = home.out[-1]  # the pool keeps the memfd's record until it comes back
            payload, _, views, lease = worker.recv()
            assert views is not None and lease is not None and views[0].readonly
            areas.append(id(views[0].obj))  # no reference: it would count as a use
            arrays = pickle.loads(payload, buffers=views)
            assert not arrays[0].flags.writeable
            assert np.array_equal(arrays[0], big(1, seed=len(areas) - 1)[0])
            del views
            held = arrays if keep else None
            del arrays
            worker.send(b"reply", lease=lease)
            assert bytes(home.recv()[0]) == b"reply"
            assert len(spares.files) == (0 if keep else 1)  # a mapping in use is not reused
            assert spares.files == ([] if keep else [sent])  # paired with what was sent
            assert len(kept.areas) == (0 if keep else 1)
            if len(areas) == 2:  # written new with pwrite, then refilled through a mapping kept
                assert spares.files[0].area is not None
            del held
        assert areas[1] == areas[0]  # refilled, and read through the mapping kept: no faults
        assert not home.out  # every memfd sent came back or was let go
        kept.forget()
        assert not kept.areas
    finally:
        spares.clear()
        home.close()
        worker.close()


def test_buffers_travel_in_the_frame_where_no_memfd_can_be_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*_: object) -> int:
        raise OSError(24, "Too many open files")

    home, worker = pair()
    try:
        monkeypatch.setattr(os, "memfd_create", refuse)
        arrays = [np.arange(2000.0), np.ones(3000)]  # small enough for the socket's buffer
        data, buffers = split(_pickling.dumps, arrays, 1000)
        assert len(buffers) == 2
        home.send(data, b"", buffers)
        payload, _, views, lease = worker.recv()
        assert lease is None and views is not None
        got = pickle.loads(payload, buffers=views)
        assert all(np.array_equal(g, a) for g, a in zip(got, arrays, strict=True))
        assert not got[0].flags.writeable
    finally:
        home.close()
        worker.close()


def test_a_dead_writers_whole_messages_are_read_with_their_memfds_and_a_cut_one_dropped() -> None:
    """What `_losses.drain` reads before it blames anyone: every whole frame a dead worker left,
    its memfd mapped, and nothing of a frame it was cut off writing (its descriptor closed)."""
    home, worker = pair(Spares(2))
    memfds_before = memfds_open()
    try:
        for seed in (1, 2):
            data, buffers = split(_pickling.dumps, big(1, seed=seed), MB)
            worker.send(b"head", data, buffers)  # a result: a memfd the worker made
        cut = _channel._HEADER.pack(1000, 4, 996, 1, 0)  # says 1000 bytes follow, 10 do
        fd = os.memfd_create("gearshift-cut")
        passed = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, _channel._FD.pack(fd))]
        worker.sock.sendmsg([cut, b"x" * 10], passed)
        os.close(fd)  # the frame's copy is in flight
        worker.close()  # the worker died
        left = home.read_left()
        assert [bytes(head) for head, *_ in left] == [b"head", b"head"]
        got = [pickle.loads(body, buffers=views)[0] for _, body, views, _ in left]
        assert all(np.array_equal(g, big(1, seed=s)[0]) for g, s in zip(got, (1, 2), strict=True))
        assert got[0].flags.writeable  # results at home: copy-on-write
        del left, got
    finally:
        home.close()
    assert home.sock.fileno() == worker.sock.fileno() == -1  # the sockets are closed
    assert memfds_open() <= memfds_before  # and no memfd is left open
    assert memfds_mapped() == 0


def floats(n: int) -> list[float]:
    return [float(x) for x in range(n)]


def test_a_big_body_without_buffers_comes_home_in_a_memfd(monkeypatch: pytest.MonkeyPatch) -> None:
    """A long list pickles to a big body with no buffer apart: it travels in a memfd too, so
    the pool's dispatcher reads a small frame instead of waiting for it on the socket."""
    made = []
    create = os.memfd_create

    def counted(name: str, flags: int = 0) -> int:
        made.append(name)
        return create(name, flags)

    home, worker = pair()
    worker.big_body = _channel.BIG_BODY
    try:
        monkeypatch.setattr(os, "memfd_create", counted)
        body = pickle.dumps(floats(200_000), protocol=5)  # ~1.8 MB
        worker.send(b"head", body)
        worker.send(b"small", b"x")
        head, got, views, _ = home.recv()
        assert (bytes(head), bytes(got), views) == (b"head", body, [])
        assert len(made) == 1
        assert [bytes(part) for part in home.recv()[:2]] == [b"small", b"x"]
        assert len(made) == 1
    finally:
        home.close()
        worker.close()
    assert gearshift.map(floats, [200_000, 3], strategy="processes") == [floats(200_000), [0, 1, 2]]
