import sys

from keras_deepblocks.cli import main

sys.exit(main())
