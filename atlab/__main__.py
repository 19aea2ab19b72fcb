import sys

from atlab.cli import main

sys.exit(main())
