"""``python -m fastnn.bench``: the ``fastnn bench`` command without the ``fastnn`` CLI."""

import sys

from . import main

sys.exit(main())
