from facelib.cli import main

raise SystemExit(main())
