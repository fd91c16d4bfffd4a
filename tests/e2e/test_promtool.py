"""`promtool check metrics` (Debian's prometheus package) on every golden exposition file and on
the live output of the binary."""

import subprocess

import pytest

from conftest import BIN, ROOT

GOLDEN = sorted((ROOT / "tests" / "fixtures" / "golden").glob("*.prom"))


def promtool_check(text: str):
    return subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)


def test_golden_files_exist():
    assert len(GOLDEN) >= 8


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_golden_file_passes_promtool(path):
    result = promtool_check(path.read_text())
    assert result.returncode == 0, result.stdout + result.stderr


def test_once_output_passes_promtool():
    out = subprocess.run([str(BIN), "--once", "--report.file", str(ROOT / "examples" / "credential-report.json")], capture_output=True, text=True, check=True)
    result = promtool_check(out.stdout)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_catches_a_broken_exposition():
    """The check above can fail: promtool rejects a malformed line."""
    result = promtool_check('aws_iam_users{account_id="1" 7\n')
    assert result.returncode != 0
