"""The ``eigenscope`` command's entry point.

It lives outside the package so that a Ctrl-C arriving while ``import eigenscope``
still loads NumPy and SciPy (before :func:`eigenscope.cli.main` installs its own
handlers) also ends in one line and exit status 130, not a traceback.
"""

from __future__ import annotations

import sys


def main() -> int:
    """Import the command and run it; an interrupt during the import exits 130."""
    try:
        from eigenscope.cli import main as run
    except KeyboardInterrupt:
        sys.stderr.write("eigenscope: interrupted\n")
        return 130
    return run()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
