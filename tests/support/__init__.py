# SPDX-License-Identifier: LGPL-2.1-or-later
"""What the tests share: fixture filters, plain drgn walks, the doors' runners.
Test modules import from here, never from each other."""
