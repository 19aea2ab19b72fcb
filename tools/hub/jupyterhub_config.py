# JupyterHub configuration of the atlab workshop hub.  Loaded by `jupyterhub -f` from the
# launcher (python -m tools.hub), which checks the settings, ports and proxy first and passes
# them in the JSON file named by ATLAB_HUB_LAUNCH.  Why each choice: docs/workshop.md.
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from tools.hub.config import apply

# `c` is the config object JupyterHub puts into this file's namespace; imported as a module
# (pytest --doctest-modules tools/hub) there is none and nothing is done.
_c = globals().get("c")
if _c is not None:
    apply(_c, json.loads(Path(os.environ["ATLAB_HUB_LAUNCH"]).read_text()),
          python=sys.executable)
