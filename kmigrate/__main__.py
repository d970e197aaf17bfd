import sys

from kmigrate.cli import main

sys.exit(main())
