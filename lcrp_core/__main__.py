from lcrp_core.cli import main

raise SystemExit(main())
