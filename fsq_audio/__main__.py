import sys

from fsq_audio.cli import main

sys.exit(main())
