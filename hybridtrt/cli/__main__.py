"""``python -m hybridtrt.cli`` runs the command line (as ``python -m hybridtrt`` does)."""

import sys

from hybridtrt.cli.app import main

sys.exit(main())
