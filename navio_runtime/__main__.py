import sys

from navio_runtime.cli import main

sys.exit(main())
