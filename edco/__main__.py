from edco.cli import main

raise SystemExit(main())
