import sys

from rovbus.cli.main import main

sys.exit(main())
