"""``python -m fastdrop``: see :func:`fastdrop._tools.cli.main`."""

from fastdrop._tools.cli import main

raise SystemExit(main())
