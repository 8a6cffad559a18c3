# SPDX-License-Identifier: LGPL-2.1-or-later
"""``--redact``: kernel addresses, process names, session names and paths
replaced with stable placeholders in a document, so a report can be posted
publicly."""

from __future__ import annotations

import re
from typing import Any

ADDRESS_KEYS = {"address", "ops", "file", "serialized_data", "data", "vma", "object"}


TEXT_KEYS = (
    "message",
    "where",
    "notes",
    "why",
    "reason",
    "cause",
)  # free text that may quote addresses


# File paths: a file's, the target's, the debug info's, the next kernel's.
PATH_KEYS = {"path", "debuginfo", "next_kernel"}


# Kept as they are: luo-inspect's own name and versions.
KEPT_KEYS = {"tool", "schema"}


_HEX = re.compile(r"0x[0-9a-f]+")


class Redactor:
    """Stable placeholders for what a public report must not show: kernel
    addresses (the KASLR layout) and every name a user chose (session names,
    memfd names and file paths, process names, the dump's and debug info's
    paths), wherever they appear, free text included.  The same value gets
    the same placeholder throughout one report.  Tokens, counts, states,
    errnos, the kernel release and handler compatibles are kept: a triager
    needs them."""

    # key -> (table, placeholder stem) of the values it holds.
    NAME_KEYS = {"name": "session", "session": "session", "comm": "comm", "hostname": "host"}

    def __init__(self) -> None:
        self.addresses: dict[str, str] = {}
        self.comms: dict[str, str] = {}
        self.names: dict[str, dict[str, str]] = {"session": {}, "comm": self.comms, "host": {}}
        self.memfds: dict[str, str] = {}
        self.paths: dict[str, str] = {}

    def address(self, value: str) -> str:
        return self.addresses.setdefault(value, f"<addr-{len(self.addresses) + 1}>")

    def comm(self, value: str) -> str:
        return self.comms.setdefault(value, f"<comm-{len(self.comms) + 1}>")

    def name(self, stem: str, value: str) -> str:
        table = self.names[stem]
        return table.setdefault(value, f"<{stem}-{len(table) + 1}>")

    def path(self, value: str) -> str:
        """A memfd keeps its shape (``/memfd:<memfd-1> (deleted)``): that it
        is a memfd matters to a triager, its name does not."""
        if m := _MEMFD_PATH.fullmatch(value):
            memfd = self.memfds.setdefault(m.group(1), f"<memfd-{len(self.memfds) + 1}>")
            return f"/memfd:{memfd}{m.group(2) or ''}"
        return self.paths.setdefault(value, f"<path-{len(self.paths) + 1}>")

    def _collect(self, node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k in KEPT_KEYS:
                    continue
                if k in ADDRESS_KEYS and isinstance(v, str):
                    self.address(v)
                elif k in self.NAME_KEYS and isinstance(v, str):
                    self.name(self.NAME_KEYS[k], v)
                elif k in PATH_KEYS and isinstance(v, str):
                    self.path(v)
                elif k in PATH_KEYS and isinstance(v, list):
                    for x in v:
                        if isinstance(x, str):
                            self.path(x)
                else:
                    self._collect(v)
        elif isinstance(node, list):
            for v in node:
                self._collect(v)

    def _apply(self, node: Any, key: str = "") -> Any:
        if isinstance(node, dict):
            return {k: v if k in KEPT_KEYS else self._apply(v, k) for k, v in node.items()}
        if isinstance(node, list):
            return [self._apply(v, key) for v in node]
        if not isinstance(node, str):
            return node
        if key in ADDRESS_KEYS:
            return self.address(node)
        if key in self.NAME_KEYS:
            return self.name(self.NAME_KEYS[key], node)
        if key in PATH_KEYS:
            return self.path(node)
        if key in TEXT_KEYS:
            # Addresses quoted in messages; tokens and small numbers are
            # not addresses and stay.
            return self.text(node)
        return node

    def text(self, text: str) -> str:
        """Redact, in free text (messages, notes, quoted kernel log lines),
        the addresses and names already seen in the document."""
        text = _HEX.sub(lambda m: self.addresses.get(m.group(), m.group()), text)
        if self._names_re is not None:
            text = self._names_re.sub(lambda m: self._placeholders[m.group()], text)
        return text

    _names_re: re.Pattern[str] | None = None
    _placeholders: dict[str, str] = {}

    def _compile_names(self) -> None:
        """One pattern for every name seen, longest first, each matched as a
        whole word (``vm-alpha`` is not redacted inside ``vm-alpha-2``)."""
        placeholders: dict[str, str] = {}
        for table in self.names.values():
            placeholders.update(table)
        for memfd, placeholder in self.memfds.items():
            placeholders[memfd] = placeholder
        for path in self.paths:
            placeholders[path] = self.paths[path]
        for path in list(placeholders):
            if _MEMFD_PATH.fullmatch(path):
                placeholders[path] = self.path(path)
        names = sorted((n for n in placeholders if n), key=len, reverse=True)
        self._placeholders = placeholders
        self._names_re = (
            re.compile("|".join(rf"(?<![\w.-]){re.escape(n)}(?![\w-])" for n in names))
            if names
            else None
        )

    def redact(self, doc: dict[str, Any]) -> dict[str, Any]:
        self._collect(doc)
        # Addresses that only appear inside messages (e.g. list nodes).
        for text in _strings(doc, TEXT_KEYS):
            for m in _HEX.finditer(text):
                if len(m.group()) >= 10:  # 32 bits and more: an address
                    self.address(m.group())
        self._compile_names()
        redacted: dict[str, Any] = self._apply(doc)
        if isinstance(redacted.get("tool"), dict):
            # Said in the report itself: a reader must not match its names.
            redacted["tool"] = {**redacted["tool"], "redacted": True}
        return redacted


_MEMFD_PATH = re.compile(r"/memfd:(.*?)( \(deleted\))?")


def _strings(node: Any, keys: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k in keys and isinstance(v, str):
                out.append(v)
            elif k in keys and isinstance(v, list):
                out += [x for x in v if isinstance(x, str)]
            else:
                out += _strings(v, keys)
    elif isinstance(node, list):
        for v in node:
            out += _strings(v, keys)
    return out
