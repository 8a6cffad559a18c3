# SPDX-License-Identifier: LGPL-2.1-or-later
"""Opening the running kernel: each reason it cannot be inspected is named.

(The successful live path is tested inside a LUO guest: test_live.py.)"""

from __future__ import annotations

import pytest

from luo_drgn.target import TargetError, _set_live


class FakeProgram:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def set_kernel(self) -> None:
        raise self.error


@pytest.mark.parametrize(
    "error,words",
    [
        (PermissionError(13, "Permission denied"), "run as root"),
        (FileNotFoundError(2, "No such file"), "CONFIG_PROC_KCORE"),
        (OSError(5, "Input/output error"), "cannot open the running kernel"),
    ],
)
def test_live_open_errors(error: Exception, words: str) -> None:
    """Would catch: a live-kernel open error given as more than one line, or without why."""
    with pytest.raises(TargetError) as e:
        _set_live(FakeProgram(error))  # type: ignore[arg-type]
    assert words in str(e.value) and "\n" not in str(e.value)
