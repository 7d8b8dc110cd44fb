"""The test suite on every supported Python this machine has: `nox`, or `nox -p 3.12`.

One session per version, each in a fresh venv with `pip install -e '.[dev]'`, as a new user
installs it. A version this machine lacks is skipped with a message, never failed, and nox never
downloads an interpreter. `make test` runs lint, types and pytest once, on .venv's Python, then
these sessions for the other versions.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nox

# requires-python = ">=3.10" (pyproject.toml): each minor version since, to the newest stable.
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]

nox.options.sessions = ["tests"]
nox.options.error_on_missing_interpreters = False  # skip a missing version, even on CI
nox.options.download_python = "never"
nox.options.default_venv_backend = "venv"


def activate_pyenv_versions() -> None:
    """pyenv's shims run only the versions pyenv has activated (`pyenv global/local/shell`):
    for this run, activate the installed ones nox looks for, after the active ones."""
    pyenv = shutil.which("pyenv")
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    if pyenv is None or "PYENV_VERSION" in os.environ or not root.is_dir():
        return
    active = subprocess.run([pyenv, "version-name"], capture_output=True, text=True).stdout
    newest: dict[str, tuple[int, ...]] = {}
    for entry in root.iterdir():
        if re.fullmatch(r"3\.\d+\.\d+", entry.name) and entry.name.rsplit(".", 1)[0] in PYTHONS:
            minor, patch = entry.name.rsplit(".", 1)[0], tuple(map(int, entry.name.split(".")))
            newest[minor] = max(newest.get(minor, patch), patch)
    installed = [".".join(map(str, version)) for version in newest.values()]
    versions = [v for v in active.strip().split(":") if v] + installed
    os.environ["PYENV_VERSION"] = ":".join(dict.fromkeys(versions))


activate_pyenv_versions()


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """pytest on this session's Python; arguments after `--` go to pytest."""
    session.install("--quiet", "-e", ".[dev]")
    session.run("pytest", *session.posargs)


if __name__ == "__main__":  # `python noxfile.py`: the versions other than this one (make test)
    this = "{}.{}".format(*sys.version_info)
    print(" ".join(version for version in PYTHONS if version != this))
