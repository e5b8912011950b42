"""``python -m eigenscope``: the ``eigenscope`` command."""

import sys

from .cli import main

sys.exit(main())
