"""``python -m camwidget``: the command line (see camwidget.command_line)."""

import sys

from camwidget.command_line import main

sys.exit(main())
