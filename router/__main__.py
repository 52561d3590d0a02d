import sys

from router.commands.cli import main

sys.exit(main())
