"""`python -m lib_w2sd.bench`: see lib_w2sd.bench.cli."""

import sys

from .cli import main

sys.exit(main())
