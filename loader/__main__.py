"""``python -m loader``: see :mod:`loader.cli`."""

import sys

from loader.cli import main

sys.exit(main())
