import sys

from deepblocks import main

sys.exit(main())
