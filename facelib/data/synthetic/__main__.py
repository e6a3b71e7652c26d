"""`python -m facelib.data.synthetic --montage PATH`: the README montage."""

from .montage import main

raise SystemExit(main())
