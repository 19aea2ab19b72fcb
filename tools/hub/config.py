"""The hub's JupyterHub configuration, as a function of the launch record the launcher writes.

The choices (docs/workshop.md, "A workshop hub on one machine", argues them):

- Authenticator: JupyterHub's built-in ``SharedPasswordAuthenticator``: the organiser writes
  one password on the board, each learner picks a name.  Nothing to install, no accounts to
  create beforehand, no e-mail; an admin (``organiser``) with its own long password can stop
  servers from ``/hub/admin``.  (``FirstUseAuthenticator`` would add per-learner passwords, a
  second package and a "forgot my password" problem in a one-day room.)
- Spawner: :class:`tools.hub.spawner.AtlabSpawner`, a local process per learner with
  ``mem_limit``/``cpu_limit`` enforced by :mod:`tools.hub.limits` (no systemd here).
- ``active_server_limit`` = the room size: learner N+1 gets JupyterHub's "Active user limit
  exceeded" page at once (HTTP 429), not a hang; ``concurrent_spawn_limit`` = 2 per core.
- ``jupyterhub-idle-culler`` as a hub service stops servers idle for ``cull_timeout``; each
  server also culls its own idle kernels after the same time.
"""

from __future__ import annotations

import os
from typing import Any

from tools.hub.settings import HubSettings

#: Learner names: they become directory names under <state>/home.
USERNAME_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"
ADMIN = "organiser"
START_URL = "/lab/tree/notebooks/00_start_here.ipynb"


def apply(c: Any, launch: dict[str, Any], *, python: str) -> None:
    s = HubSettings.from_json(launch["settings"])
    state = s.state_dir
    c.JupyterHub.bind_url = f"http://{s.ip}:{s.port}"
    c.JupyterHub.hub_ip = "127.0.0.1"
    c.JupyterHub.hub_port = launch["hub_port"]
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{launch['proxy_api_port']}"
    c.ConfigurableHTTPProxy.command = [launch["proxy"]]
    c.ConfigurableHTTPProxy.pid_file = str(state / "proxy.pid")
    c.JupyterHub.pid_file = str(state / "jupyterhub.pid")
    c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")

    c.JupyterHub.authenticator_class = "shared-password"
    c.SharedPasswordAuthenticator.user_password = launch["password"]
    c.SharedPasswordAuthenticator.admin_password = launch["admin_password"]
    c.Authenticator.admin_users = {ADMIN}
    c.Authenticator.allow_all = True
    c.Authenticator.username_pattern = USERNAME_PATTERN

    c.JupyterHub.spawner_class = "tools.hub.spawner.AtlabSpawner"
    c.AtlabSpawner.home_dir_template = str(state / "home" / "{username}")
    c.AtlabSpawner.course_root = launch["root"]
    c.AtlabSpawner.course_solutions = s.solutions
    c.AtlabSpawner.limits_mode = launch["limits_mode"]
    c.Spawner.mem_limit = s.mem_bytes
    c.Spawner.cpu_limit = s.cpu
    c.Spawner.cmd = [python, "-m", "jupyterhub.singleuser"]  # the venv need not be on PATH
    c.Spawner.default_url = START_URL
    c.Spawner.start_timeout = 120
    c.Spawner.http_timeout = 90
    args = [f"--MappingKernelManager.cull_idle_timeout={s.cull_timeout}",
            "--MappingKernelManager.cull_interval=60",
            "--ServerApp.shutdown_no_activity_timeout=0"]
    if os.geteuid() == 0:
        args.append("--allow-root")  # containers and CI run as root
    c.Spawner.args = args
    c.Spawner.environment = {"JUPYTER_PLATFORM_DIRS": "1"}

    c.JupyterHub.active_server_limit = s.learners
    c.JupyterHub.concurrent_spawn_limit = s.spawn_limit
    c.JupyterHub.services = [{
        "name": "idle-culler",
        "command": [python, "-m", "jupyterhub_idle_culler", f"--timeout={s.cull_timeout}"],
    }]
    c.JupyterHub.load_roles = [{
        "name": "idle-culler",
        "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
        "services": ["idle-culler"],
    }]
    c.JupyterHub.template_vars = {"announcement_login": (
        f"atlab workshop: pick a name ({USERNAME_PATTERN[1:-1]}) and type the password "
        "the organiser gives you.")}
