"""`python -m gearshift`: the command line."""

import sys

from gearshift.cli import main

sys.exit(main())
