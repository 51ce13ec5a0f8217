import sys

from emqpy.cli import main

sys.exit(main())
