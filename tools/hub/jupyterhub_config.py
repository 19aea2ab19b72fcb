# JupyterHub configuration of the atlab workshop hub.  Loaded by `jupyterhub -f` from the
# launcher (python -m tools.hub), which checks the settings, ports and proxy first and passes
# them in the JSON file named by ATLAB_HUB_LAUNCH.  Why each choice: docs/workshop.md.
# ruff: noqa: F821  (`c` is JupyterHub's config object)
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from tools.hub.config import apply

apply(c, json.loads(Path(os.environ["ATLAB_HUB_LAUNCH"]).read_text()), python=sys.executable)  # type: ignore[name-defined]
