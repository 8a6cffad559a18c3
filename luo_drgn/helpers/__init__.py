# SPDX-License-Identifier: LGPL-2.1-or-later
"""
LUO Helpers
-----------

The ``luo_drgn.helpers`` package is luo-drgn's drgn layer: helpers for the
Linux kernel's Live Update Orchestrator, in the form of drgn's own
``drgn.helpers.linux`` (Objects in and out, names as ``bytes``, plain list
iterators with ``validate_*`` twins, layout probes cached in
``prog.cache``).  It imports nothing but drgn, so its modules can be read,
copied and tested without the rest of luo-drgn:

- :mod:`~luo_drgn.helpers.liveupdate`: LUO itself (sessions, preserved
  files, handlers, FLBs, the serialized handover, the freeze);
- :mod:`~luo_drgn.helpers.kho`: the KHO block sets LUO serializes into;
- :mod:`~luo_drgn.helpers.file_holders`: the kernel objects that hold a
  ``struct file`` besides fd tables and mappings;
- :mod:`~luo_drgn.helpers.kexec`: the image loaded for the next ``kexec -e``;
- :mod:`~luo_drgn.helpers.bounded`: list validators for corrupted memory.

The helpers of the first four, and :class:`~luo_drgn.helpers.bounded.WalkError`,
are exported here, so ``from luo_drgn.helpers import *`` brings them; each
name starts with ``luo_``, ``memfd_luo_``, ``validate_luo_``, ``kexec_``,
``kimage_`` or names the
kernel object it walks, so none collides in drgn's CLI globals.
"""

from .bounded import WalkError as WalkError
from .file_holders import *  # noqa: F403
from .file_holders import __all__ as _file_holders
from .kexec import *  # noqa: F403
from .kexec import __all__ as _kexec
from .kho import *  # noqa: F403
from .kho import __all__ as _kho
from .liveupdate import *  # noqa: F403
from .liveupdate import __all__ as _liveupdate

__all__ = tuple(sorted(("WalkError", *_file_holders, *_kexec, *_kho, *_liveupdate)))  # noqa: PLE0605
