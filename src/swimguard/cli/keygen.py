"""`swimguard keygen`: a new random encryption key, base64, on stdout."""

from __future__ import annotations

import base64
import os
import sys

from swimguard.cli.event_output import discard_stdout
from swimguard.cli.exit_codes import ExitCode

__all__ = ["keygen"]


def keygen() -> int:
    """Print a new key; a key that cannot be written must not look like success."""
    key = base64.b64encode(os.urandom(32)).decode()
    try:
        if sys.stdout is None:
            raise OSError("stdout is closed")
        sys.stdout.write(key + "\n")
        sys.stdout.flush()
    except OSError as exc:
        print(f"swimguard keygen: error: cannot write the key to stdout: {exc.strerror or exc}",
              file=sys.stderr)
        discard_stdout()
        return ExitCode.OUTPUT_FAILED
    return ExitCode.OK
