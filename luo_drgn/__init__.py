# SPDX-License-Identifier: LGPL-2.1-or-later
"""luo-drgn: inspect the Linux Live Update Orchestrator with drgn.

The helpers (:mod:`luo_drgn.helpers`) work in any drgn session; the
collector, checks and renderers behind ``luo-inspect`` and ``%luo`` build on
them.
"""

__version__ = "0.1.0"
