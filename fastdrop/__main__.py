"""``python -m fastdrop``: see :func:`fastdrop._info.main`."""

from fastdrop._info import main

raise SystemExit(main())
