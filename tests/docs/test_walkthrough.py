"""The plugin walk-through of docs/writing-plugins.md works as written.

Its Python blocks are a module (`ocos_oracle_feeds/__init__.py`) and a test file; they are
written to a temporary project and the test runs there with pytest, as a reader would.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.docs.helpers import ROOT

PAGE = ROOT / "docs" / "writing-plugins.md"
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def files_of_walkthrough() -> dict[str, str]:
    """Path to source, from the blocks whose first line names their file."""
    files: dict[str, str] = {}
    for block in BLOCK.findall(PAGE.read_text(encoding="utf-8")):
        first, _, body = block.partition("\n")
        found = re.fullmatch(r"# (\S+\.py)( \(continued\))?", first)
        if found:
            files[found.group(1)] = files.get(found.group(1), "") + (
                "\n\n" + body if found.group(2) else body)
    return files


def test_walkthrough_blocks_form_a_plugin_and_its_test() -> None:
    files = files_of_walkthrough()
    assert set(files) == {"ocos_oracle_feeds/__init__.py", "tests/test_oracle_feeds.py"}
    assert "@hookimpl" in files["ocos_oracle_feeds/__init__.py"]


def test_walkthrough_test_passes_against_a_real_hub(tmp_path: Path) -> None:
    for name, source in files_of_walkthrough().items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "-o", "asyncio_mode=auto", "-o", "asyncio_default_fixture_loop_scope=function",
         "--rootdir", str(tmp_path), "tests"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path), "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
