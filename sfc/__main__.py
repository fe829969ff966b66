from sfc.cli import main

raise SystemExit(main())
