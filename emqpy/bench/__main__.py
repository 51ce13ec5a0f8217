import sys

from . import main

if __name__ == "__main__":  # not when a spawned worker re-imports the parent's main module
    sys.exit(main())
