"""What a process worker sets up when a task first imports a module: log forwarding once it
imports `logging` (an import hook waits for it, so workers never pay for logging they do not use).

Loaded by file path by `worker`, as `worker` itself is, so it imports no part of gearshift.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing itself is not imported: a worker pays for what it uses
if TYPE_CHECKING:
    from collections.abc import Callable
    from importlib.machinery import ModuleSpec
    from types import ModuleType
    from typing import Any


class Logs:
    """Sends this worker's log records to the pool, whose own handlers then emit them.

    Installed the moment a task's code imports logging (an import hook waits for it), so
    workers never pay for logging they do not use, and not even a task's first record is lost.
    """

    def __init__(self, send: Callable[[Any], None], levels: dict[str, int]) -> None:
        self.send, self.levels, self.on = send, levels, False

    def install(self) -> None:
        if not self.on:
            after_import("logging", self._forward)

    def _forward(self, logging: ModuleType) -> None:
        if self.on:
            return
        self.on = True
        send = self.send

        class Forward(logging.Handler):  # type: ignore[name-defined,misc]
            def emit(self, record: Any) -> None:  # as QueueHandler.prepare does
                try:
                    message = self.format(record)
                    record = logging.makeLogRecord(record.__dict__)
                    record.message = record.msg = message
                    record.args = record.exc_info = record.exc_text = record.stack_info = None
                    send(record)
                except Exception:  # a record that cannot travel is lost, not the task
                    pass

        logging.getLogger().handlers = [Forward()]
        for name, level in self.levels.items():
            logging.getLogger(name or None).setLevel(level)


def after_import(name: str, then: Callable[[ModuleType], None]) -> None:
    """`then(module)` now if `name` is imported, else right after its first import."""
    if name in sys.modules:
        then(sys.modules[name])
    elif not any(getattr(finder, "name", None) == name for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport(name, then))


class _AfterImport:
    """A meta path finder that calls `then(module)` right after `name` is first imported (its
    real loader runs as usual). It stays in sys.meta_path, inert: removing it could make another
    thread's import, iterating that list, skip a finder."""

    def __init__(self, name: str, then: Callable[[ModuleType], None]) -> None:
        self.name, self.then, self.done = name, then, False

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> ModuleSpec | None:
        if fullname != self.name or self.done:
            return None
        self.done = True
        for finder in sys.meta_path:
            find = None if finder is self else getattr(finder, "find_spec", None)
            spec: ModuleSpec | None = None if find is None else find(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _ThenLoader(spec.loader, self.then)  # type: ignore[assignment]
                return spec
        return None


class _ThenLoader:
    """The real loader, then `then(module)`; everything else is the real loader's."""

    def __init__(self, loader: Any, then: Callable[[ModuleType], None]) -> None:
        self.loader, self.then = loader, then

    def exec_module(self, module: ModuleType) -> None:
        self.loader.exec_module(module)
        try:  # noqa: SIM105 - workers do not import contextlib
            self.then(module)
        except Exception:  # not forwarded: records go where logging sends them by default
            pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)
