"""``python -m hybridtrt`` runs the command line."""

import sys

from hybridtrt.cli import main

sys.exit(main())
