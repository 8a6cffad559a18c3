# SPDX-License-Identifier: LGPL-2.1-or-later
"""
LUO Helpers
-----------

The ``luo_drgn.helpers`` package is luo-drgn's drgn layer, and its only one:
no other part of luo-drgn reads a kernel member.  Its modules are helpers
for the Linux kernel's Live Update Orchestrator in the form of drgn's own
``drgn.helpers.linux`` (Objects in and out, names as ``bytes``, plain list
iterators with ``validate_*`` twins, layout probes cached in
``prog.cache``).  They import nothing but drgn and each other, relatively,
so they can be copied into ``drgn/helpers/linux/`` as they are:

- :mod:`~luo_drgn.helpers.liveupdate`: handlers, sessions, preserved files;
- :mod:`~luo_drgn.helpers.liveupdate_state`: LUO-wide state and the freeze;
- :mod:`~luo_drgn.helpers.liveupdate_handover`: what crosses the kexec,
  FLBs, the memfd handler's state;
- :mod:`~luo_drgn.helpers.liveupdate_layout`: which LUO layout a kernel has;
- :mod:`~luo_drgn.helpers.kho`: the KHO block sets LUO serializes into;
- :mod:`~luo_drgn.helpers.kexec`: the image loaded for the next ``kexec -e``;
- :mod:`~luo_drgn.helpers.file_holders`: the kernel objects that hold a
  ``struct file`` besides fd tables and mappings;
- :mod:`~luo_drgn.helpers.vfs` and :mod:`~luo_drgn.helpers.bounded`:
  helpers meant for drgn itself (a struct file's count and path; bounded
  list walks, whole-block list and XArray reads).

Every module's helpers are exported here, so ``from luo_drgn.helpers import
*`` brings them, as ``drgn.helpers.linux`` brings its own.
"""

from .bounded import *  # noqa: F403
from .bounded import __all__ as _bounded
from .cmdline import *  # noqa: F403
from .cmdline import __all__ as _cmdline
from .file_holders import *  # noqa: F403
from .file_holders import __all__ as _file_holders
from .kexec import *  # noqa: F403
from .kexec import __all__ as _kexec
from .kho import *  # noqa: F403
from .kho import __all__ as _kho
from .liveupdate import *  # noqa: F403
from .liveupdate import __all__ as _liveupdate
from .liveupdate_handover import *  # noqa: F403
from .liveupdate_handover import __all__ as _liveupdate_handover
from .liveupdate_layout import *  # noqa: F403
from .liveupdate_layout import __all__ as _liveupdate_layout
from .liveupdate_state import *  # noqa: F403
from .liveupdate_state import __all__ as _liveupdate_state
from .vfs import *  # noqa: F403
from .vfs import __all__ as _vfs

__all__ = tuple(  # noqa: PLE0605
    sorted(
        (
            *_bounded,
            *_cmdline,
            *_file_holders,
            *_kexec,
            *_kho,
            *_liveupdate,
            *_liveupdate_handover,
            *_liveupdate_layout,
            *_liveupdate_state,
            *_vfs,
        )
    )
)
