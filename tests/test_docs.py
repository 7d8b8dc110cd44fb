"""Every ```python block in README.md and docs/**/*.md runs, so no example in the docs can rot.

Each block runs as a script (`python example.py`, so `__name__ == "__main__"`) with
`sys.executable`, in a subprocess of its own session, in a fresh temporary directory that is also
its TMPDIR, within BLOCK_TIMEOUT seconds. A block passes when it exits with status 0 and leaves no
process behind; output shown in its comments is not compared. Lithops is pointed at its localhost
backend (LITHOPS_CONFIG), never at a developer's cloud config. Examples that download use
gearshift's ImageServer on 127.0.0.1, never the internet. Only ```python fences count: ```bash,
```console and ```text blocks are not run.

A marker, an HTML comment on the line just before a block's opening fence, changes that:

    <!-- no-run: REASON -->   not run (it needs AWS credentials, a cloud, a cluster address, or
                              is a signature synopsis); REASON is required: it is the skip reason
    <!-- file: NAME.py -->    a module the page's examples import: written as NAME.py into the
                              directory of every block of that page, and run once on its own
    <!-- continue -->         continues the page's previous block: the two run as one program

The test ids name the page and the line of the opening fence: `docs/guide/api.md:42`.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK_TIMEOUT = 40.0  # seconds per block; the suite's own per-test timeout is 60 s
LEFTOVER_GRACE = 5.0  # seconds for a block's worker processes to exit after it has
FENCE = re.compile(r"^```(\w*)\s*$")
MARKER = re.compile(r"^<!--\s*(no-run|file|continue)\s*(?::\s*(.*?))?\s*-->$")
LOCAL_LITHOPS = {"lithops": {"backend": "localhost", "storage": "localhost", "data_cleaner": False}}


@dataclass(frozen=True)
class Block:
    page: str  # relative to the repository root
    line: int  # of the opening fence, 1-based
    code: str
    marker: str | None = None  # "no-run", "file" or "continue"
    argument: str = ""  # the skip reason, or the file name


@dataclass
class Example:
    id: str
    code: str
    files: dict[str, str] = field(default_factory=dict)
    skip: str | None = None


def python_blocks(path: Path) -> list[Block]:
    """The page's ```python blocks, each with the marker on the line before its fence."""
    lines = path.read_text(encoding="utf-8").splitlines()
    page = path.relative_to(ROOT).as_posix()
    blocks, i = [], 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j].rstrip() == "```"), None)
        assert end is not None, f"{page}:{i + 1}: a code fence that never closes"
        if fence.group(1) == "python":
            marker = MARKER.match(lines[i - 1].strip()) if i else None
            blocks.append(
                Block(
                    page,
                    i + 1,
                    "\n".join(lines[i + 1 : end]) + "\n",
                    marker.group(1) if marker else None,
                    (marker.group(2) or "").strip() if marker else "",
                )
            )
        i = end + 1
    return blocks


def examples() -> list[Example]:
    found: list[Example] = []
    for path in PAGES:
        blocks = python_blocks(path)
        files = {b.argument: b.code for b in blocks if b.marker == "file"}
        page: list[Example] = []
        for b in blocks:
            where = f"{b.page}:{b.line}"
            if b.marker == "continue":
                assert page, f"{where}: <!-- continue --> with no block before it on the page"
                page[-1].code += "\n" + b.code
            elif b.marker == "no-run":
                page.append(Example(where, b.code, skip=b.argument))
            elif b.marker == "file":
                page.append(Example(where, b.code, {b.argument: b.code}))
            else:
                page.append(Example(where, b.code, files))
        found += page
    return found


EXAMPLES = examples()


def _params() -> list[object]:
    return [
        pytest.param(
            e, id=e.id, marks=[pytest.mark.skip(reason=f"{e.id}: {e.skip}")] if e.skip else []
        )
        for e in EXAMPLES
    ]


def _env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ, TMPDIR=str(tmp), LITHOPS_CONFIG=json.dumps(LOCAL_LITHOPS))
    env.pop("LITHOPS_CONFIG_FILE", None)
    return env


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _run(example: Example, tmp: Path) -> tuple[int, str]:
    """Run the example in its own session; kill the whole session if it overruns or lingers."""
    for name, code in example.files.items():
        (tmp / name).write_text(code, encoding="utf-8")
    script = tmp / "example.py"
    script.write_text(example.code, encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, script.name],
        cwd=tmp,
        env=_env(tmp),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=BLOCK_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        pytest.fail(f"{example.id} ran longer than {BLOCK_TIMEOUT} s:\n{output}")
    deadline = time.monotonic() + LEFTOVER_GRACE
    while _group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _group_alive(proc.pid):
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(f"{example.id} left processes running {LEFTOVER_GRACE} s after it exited")
    return proc.returncode, output


@pytest.mark.parametrize("example", _params())
def test_example_runs(example: Example, tmp_path: Path) -> None:
    status, output = _run(example, tmp_path)
    assert status == 0, f"{example.id} exited with status {status}:\n{output}"


def test_examples_were_found() -> None:
    pages = {e.id.split(":")[0] for e in EXAMPLES}
    assert "README.md" in pages
    assert len(EXAMPLES) >= 20, [e.id for e in EXAMPLES]


def test_every_skip_says_why() -> None:
    for e in EXAMPLES:
        reason = f"{e.id}: <!-- no-run: REASON --> needs a reason"
        assert e.skip is None or len(e.skip) >= 10, reason
    skipped = [e.id for e in EXAMPLES if e.skip is not None]
    assert len(skipped) <= len(EXAMPLES) // 4, f"too many examples are not run: {skipped}"


def test_every_marker_sits_on_a_python_block() -> None:
    """A marker before anything but a ```python fence, or an indented fence, would be ignored."""
    for path in PAGES:
        lines = path.read_text(encoding="utf-8").splitlines()
        for n, line in enumerate(lines):
            where = f"{path.relative_to(ROOT).as_posix()}:{n + 1}"
            if line.lstrip().startswith("```python"):
                assert line.startswith("```python"), f"{where}: indented fences are not collected"
            if MARKER.match(line.strip()):
                following = lines[n + 1] if n + 1 < len(lines) else ""
                assert following.startswith("```python"), f"{where}: marker not before ```python"
            elif line.strip().startswith("<!--") and re.search(r"no-run|continue|file:", line):
                pytest.fail(f"{where}: malformed marker {line.strip()!r}")


def test_readme_first_screen_shows_the_make_commands() -> None:
    first_screen = "\n".join((ROOT / "README.md").read_text(encoding="utf-8").splitlines()[:25])
    assert "make demo" in first_screen and "make test" in first_screen
