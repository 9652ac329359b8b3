"""`python -m bgrepro.book run|build|check`: the book's runner (`bgrepro.book.runner`)."""

import sys

from .runner import main

sys.exit(main())
