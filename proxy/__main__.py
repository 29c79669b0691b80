"""`python -m proxy` runs the switchyard command line."""

from proxy.cli import main

raise SystemExit(main())
