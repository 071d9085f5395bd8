"""`python -m scrm_edge --config config.json`: run the edge component (scrm_edge.runtime.component)."""

from scrm_edge.runtime.component import main

raise SystemExit(main())
