"""``python -m training.cli``: the same as ``aezoo``."""

import sys

from training.cli import main

sys.exit(main())
