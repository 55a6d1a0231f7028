"""`python -m bench.cli`: the same as the `bench` script."""

import sys

from bench.cli import main

sys.exit(main())
