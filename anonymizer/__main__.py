"""`python -m anonymizer ...`: see `anonymizer.cli`."""

from anonymizer.cli import main

raise SystemExit(main())
