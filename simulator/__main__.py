"""`python -m simulator` runs the SMSC simulator (same as `smsgw simulator`)."""

import sys

from simulator.cli import main

sys.exit(main())
