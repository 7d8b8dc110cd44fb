"""What a CLI command runs: a function named `MODULE:FUNC`, and items from `--items` or a file.

`MODULE` is an importable module (the current directory is searched first, as `python -m` does)
or a path to a `.py` file. Either way the function is imported by module name, so process
workers, which get the parent's `sys.path`, can import it too.
"""

from __future__ import annotations

import builtins
import importlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gearshift.errors import UsageError, short_repr

__all__ = ["load_function", "load_items"]

_EXAMPLE = "e.g. mypackage.work:crunch or ./work.py:crunch"


def load_function(spec: str) -> Callable[[Any], Any]:
    """The callable named by `MODULE:FUNC` (FUNC may be dotted: `mod:Class.method`)."""
    module_name, sep, attr = spec.rpartition(":")
    if not sep or not module_name or not attr:
        raise UsageError(f"MODULE:FUNC: got {spec!r}; name a module and a function, {_EXAMPLE}")
    if module_name.endswith(".py") or "/" in module_name or os.sep in module_name:
        path = Path(module_name).resolve()
        if not path.is_file():
            raise UsageError(f"MODULE:FUNC: no file {module_name!r}; give an existing .py file")
        _search_first(str(path.parent))
        module_name = path.stem
    else:
        _search_first(os.getcwd())
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(
            f"MODULE:FUNC: cannot import {module_name!r} ({exc}); run from the directory that "
            f"holds it, install it, or give a path, {_EXAMPLE}"
        ) from exc
    except Exception as exc:
        raise UsageError(
            f"MODULE:FUNC: importing {module_name!r} raised {type(exc).__name__}: {exc}; fix "
            "the module (does it run work at import time? guard it with if __name__ == ...)"
        ) from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise UsageError(
                f"MODULE:FUNC: {module_name!r} has no {attr!r}; check the spelling ({spec!r})"
            ) from None
    if not callable(obj):
        raise UsageError(f"MODULE:FUNC: {spec!r} is {short_repr(obj)}, not a function")
    return obj  # type: ignore[no-any-return]


def _search_first(directory: str) -> None:
    if directory not in sys.path:
        sys.path.insert(0, directory)


def load_items(expr: str | None, path: str | None) -> list[Any]:
    """Items from a Python expression (`'range(100)'`) or a file: a `.json` array, else one
    JSON value per non-empty line, or one string per line if some line is not JSON. Exactly one
    of the two must be given."""
    if (expr is None) == (path is None):
        raise UsageError(
            "--items/--items-file: give exactly one: --items 'range(100)' (a Python expression) "
            "or --items-file FILE (a JSON array, or one JSON value per line)"
        )
    if expr is not None:
        try:
            value = eval(expr, {"__builtins__": builtins}, {})  # the user's own expression
        except Exception as exc:
            raise UsageError(
                f"--items: {expr!r} raised {type(exc).__name__}: {exc}; give a Python "
                "expression such as 'range(100)' or '[10**6] * 8'"
            ) from None
        source = f"--items {expr!r}"
    else:
        assert path is not None
        value = _read_items_file(path)
        source = f"--items-file {path}"
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__iter__"):
        raise UsageError(f"{source} gave {short_repr(value)}; give a list, range or generator")
    items = list(value)
    if not items:
        raise UsageError(f"{source} gave no items; give at least one")
    return items


def _read_items_file(path: str) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--items-file: cannot read {path} ({exc.strerror})") from None
    if path.endswith(".json"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"--items-file: {path} is not valid JSON ({exc})") from None
    lines = [line for line in text.splitlines() if line.strip()]
    try:  # one JSON value per line (JSON Lines), if every line is one
        return [json.loads(line) for line in lines]
    except json.JSONDecodeError:
        return lines
