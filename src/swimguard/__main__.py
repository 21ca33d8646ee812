"""`python -m swimguard`: the same command line as `swimguard`."""

from __future__ import annotations

import sys

from swimguard.cli import main

if __name__ == "__main__":
    sys.exit(main())
