"""`python -m recbench` runs the CLI."""

from .cli import main

raise SystemExit(main())
