"""``python -m camwidget``: the command line (see camwidget.pipeline.cli)."""

import sys

from camwidget.pipeline.cli import main

sys.exit(main())
