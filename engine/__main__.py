"""``python -m engine <command>``: see ``engine/cli.py``. The Python version is checked before anything else is
imported (``engine/process/python_check.py``), so keep this file readable by any Python."""

import sys

from .process import python_check

if __name__ == "__main__":
    python_check.refuse_unsupported()

    from .cli import main

    sys.exit(main())
