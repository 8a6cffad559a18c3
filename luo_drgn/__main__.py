# SPDX-License-Identifier: LGPL-2.1-or-later
"""python -m luo_drgn: the luo-inspect command."""

import sys

from .cli import main

sys.exit(main())
