"""python -m luo_drgn: the luo-inspect command."""

import sys

from .cli import main

sys.exit(main())
