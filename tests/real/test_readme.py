# SPDX-License-Identifier: LGPL-2.1-or-later
"""The README stays true: its report is the tool's real output, and CI runs
its test command."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

TOP = Path(__file__).resolve().parents[2]
README = (TOP / "README.md").read_text()


def _tool_line_free(text: str) -> str:
    # The tool line names the installed drgn's version, which pip may move.
    return re.sub(r"^tool: .*$", "tool: -", text, flags=re.M)


SAMPLES = {
    # marker in the README -> the command it shows
    "report": ["--example", "incoming", "report"],
    "preflight": ["--example", "doomed", "preflight"],
    "diff": ["diff", "vmcores/data/fixtures/journey-after/before.json", "example:journey-after"],
}


def test_readme_samples_are_real_output() -> None:
    """Would catch: a README sample that is no longer what luo-inspect prints."""
    for marker, args in SAMPLES.items():
        block = README.split(f"<!-- {marker}:begin -->\n", 1)[1].split(f"<!-- {marker}:end -->", 1)[
            0
        ]
        lines = block.strip().splitlines()
        assert lines[0] == "```" and lines[-1] == "```"
        assert lines[1] == "$ luo-inspect " + " ".join(args)
        shown = "\n".join(lines[2:-1]) + "\n"
        real = subprocess.run(
            [sys.executable, "-m", "luo_drgn", *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=TOP,
        ).stdout
        assert _tool_line_free(shown) == _tool_line_free(real), marker


def test_ci_runs_the_readme_commands() -> None:
    """Would catch: .ci/run no longer running the README's set-up commands."""
    setup = README.split("## Set-up", 1)[1].split("```", 2)[1].strip().splitlines()
    assert len(setup) == 2
    assert setup[0].endswith("luo-inspect --example incoming report")
    ci = (TOP / ".ci" / "run").read_text()
    assert setup[1] in ci.splitlines()


def test_every_helper_is_in_the_readme() -> None:
    """The README's helper table names every public helper, and no other."""
    from luo_drgn import helpers

    table = README.split("  | what | helpers |", 1)[1].split("\n\n", 1)[0]
    listed = set(re.findall(r"`([A-Za-z_]+)`", table))
    assert listed == set(helpers.__all__)
