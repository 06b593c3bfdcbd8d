import sys

from ocos_hub.cli import main

sys.exit(main())
