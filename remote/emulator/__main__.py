"""``python -m emulator ARGV...`` (the zipapp's own entry does the same)."""
import sys

from .dispatch import main

sys.exit(main())
