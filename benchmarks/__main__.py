"""`python -m benchmarks`: the whole benchmark suite in one run (see benchmarks/run.py)."""

import sys

from benchmarks.run import main

sys.exit(main())
