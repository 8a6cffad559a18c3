# SPDX-License-Identifier: LGPL-2.1-or-later
"""The finding-code registry is the one list of codes: the JSON schema's
enum and the README's table are made from it, and every finding the checks
make is registered with its severity."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from luo_drgn import findings
from luo_drgn.model import Finding

TOP = Path(__file__).resolve().parents[2]
SCHEMA = json.loads(resources.files("luo_drgn").joinpath("luo-inspect-1.schema.json").read_text())


def _schema_enum(node: object, key: str) -> list[str] | None:
    """The enum of the first ``key`` property under ``node``."""
    if isinstance(node, dict):
        if key in node.get("properties", {}) and "enum" in node["properties"][key]:
            return list(node["properties"][key]["enum"])
        for value in node.values():
            found = _schema_enum(value, key)
            if found is not None:
                return found
    elif isinstance(node, list):
        for value in node:
            found = _schema_enum(value, key)
            if found is not None:
                return found
    return None


def test_schema_enum_is_the_registry() -> None:
    """Would catch: a code added to the registry but not to the schema
    (every report with it would fail validation) or the reverse."""
    assert _schema_enum(SCHEMA, "code") == list(findings.CODES)
    assert _schema_enum(SCHEMA, "severity") == list(findings.SEVERITIES)


def test_readme_table_is_the_registry() -> None:
    """Would catch: the README's findings table drifting from the registry."""
    readme = (TOP / "README.md").read_text()
    table = readme.split("<!-- findings:begin (python -m luo_drgn.findings) -->\n", 1)[1]
    assert table.split("<!-- findings:end -->", 1)[0] == findings.readme_table()


def test_codes_are_unique_and_well_formed() -> None:
    """Would catch: a duplicate finding code, or one without a meaning or a valid severity."""
    assert len(set(findings.CODES)) == len(findings.CODES)
    for c in findings.REGISTRY:
        assert c.severity in findings.SEVERITIES and c.direction in ("incoming", "any")
        assert c.meaning and c.code == c.code.lower()
        # decides is read for the next handover's codes only: an incoming
        # code never decides, and saying so would be dead data.
        assert c.decides or c.direction == "any", c.code


def test_finding_takes_the_registered_severity() -> None:
    """Would catch: a finding made with another severity than its code's, or an unknown code
    accepted."""
    f = findings.finding("retrieve-failed", "m", session="s", token=0x100)
    assert f == Finding("retrieve-failed", "warning", "m", "s", 0x100, None)
    with pytest.raises(KeyError):
        findings.finding("no-such-code", "m")


def test_kernel_errno_names() -> None:
    """Would catch: a kernel errno misnamed, or an unknown one shown as a name."""
    # include/uapi/asm-generic/errno.h: 95 is EOPNOTSUPP in the kernel, which
    # Python names ENOTSUP.
    assert findings.errno_name(-95) == "EOPNOTSUPP"
    assert findings.errno_name(-22) == "EINVAL"
    assert findings.errno_name(-4095) == "errno 4095"


def test_incoming_codes() -> None:
    """Would catch: INCOMING_CODES (public) holding the codes about the next
    handover instead of those about what the previous kernel handed over."""
    assert {"not-retrieved", "retrieve-failed", "lost-at-kexec"} <= findings.INCOMING_CODES
    assert not {"duplicate-token", "next-kernel-panic"} & findings.INCOMING_CODES
