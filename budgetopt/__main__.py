"""``python -m budgetopt``: the ``budgetopt`` command line."""

import sys

from budgetopt.cli import main

sys.exit(main())
