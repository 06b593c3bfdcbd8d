"""`python -m ocos_hub.docs`: the topic pages (see `ocos_hub.docs.topics`)."""

from __future__ import annotations

from ocos_hub.docs.topics import main

raise SystemExit(main())
