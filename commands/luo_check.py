"""luo-inspect check, as a drgn script: drgn -c VMCORE -s VMLINUX commands/luo_check.py [OPTIONS]"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # luo_drgn from this checkout
from luo_drgn.cli import run_in_drgn  # noqa: E402

sys.exit(run_in_drgn(prog, ["check", *sys.argv[1:]])[1])  # type: ignore[name-defined]  # noqa: F821
