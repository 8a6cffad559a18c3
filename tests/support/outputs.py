# SPDX-License-Identifier: LGPL-2.1-or-later
"""Every fixture's output, written to files: to hold a change that must not
change behaviour (a move between modules, a speed-up) byte for byte.

    python -m tests.support.outputs DEST [committed] [fresh] [full] [fleet]

writes, for each fixture of the origins named (default all: the committed
ones, and the fresh, full and fleet runs the test session regenerated into
the cache), ``report``, ``preflight``, ``check``, ``files`` and ``handlers``
in JSON and text, and ``report`` in Markdown, each with its exit status and
what it wrote on stderr.  Run it at the commit before the change and at the
one after, then ``diff -r BEFORE AFTER``: the one difference allowed is the
checkout's own path, where a preflight names the debug file it took from
the cache."""

from __future__ import annotations

import contextlib
import io
import shutil
import sys
from pathlib import Path

from luo_drgn import examples
from luo_drgn.cli import main as luo_inspect

TOP = Path(__file__).resolve().parents[2]
COMMANDS = ("report", "preflight", "check", "files", "handlers")


def roots() -> dict[str, Path]:
    """Where each origin's fixtures are."""
    cache = examples.cache_dir()
    return {
        "committed": TOP / "vmcores" / "data" / "fixtures",
        **{origin: cache / origin for origin in ("fresh", "full", "fleet")},
    }


def write_outputs(dest: Path, origins: list[str]) -> int:
    """Write the outputs of every fixture of ``origins`` under ``dest``;
    return how many fixtures."""
    dest.mkdir(parents=True, exist_ok=True)
    fixtures = 0
    # --example NAME reads DATA/fixtures/NAME and DATA/kernel.  The reports
    # name that path: one place, the same at every run in this checkout.
    for origin, root in roots().items():
        if origins and origin not in origins or not root.is_dir():
            continue
        data = examples.cache_dir() / "outputs-data" / origin
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir(parents=True)
        (data / "fixtures").symlink_to(root)
        (data / "kernel").symlink_to(TOP / "vmcores" / "data" / "kernel")
        examples.DATA = data
        for name in examples.fixture_names(root):
            for fmt in ("json", "text", "markdown"):
                for command in COMMANDS:
                    if fmt == "markdown" and command != "report":
                        continue
                    out = dest / f"{origin}.{name}.{command}.{fmt}"
                    err = io.StringIO()
                    with contextlib.redirect_stderr(err):
                        status = luo_inspect(
                            ["--example", name, "--format", fmt, "-o", str(out), command]
                        )
                    out.with_name(out.name + ".status").write_text(f"{status}\n{err.getvalue()}")
            fixtures += 1
    return fixtures


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    print(write_outputs(Path(sys.argv[1]), sys.argv[2:]), "fixtures")
