"""``python -m igm …``: the same command line as the ``igm`` entry point (and ``python -m igm.cli``,
which torchrun uses)."""

import sys

from igm.cli import main

if __name__ == "__main__":
    sys.exit(main())
