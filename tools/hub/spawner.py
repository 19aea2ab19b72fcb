"""The workshop spawner: JupyterHub's ``SimpleLocalProcessSpawner`` (every learner's server is a
local process of the hub's Unix user, home ``<state>/home/<name>``) plus the course copy and
the limits of :mod:`tools.hub.limits`.

No isolation between learners beyond the limits: they run as one Unix user (README,
LIMITATIONS).  Use it in a room of people who trust each other; beyond one machine, Zero to
JupyterHub gives each learner a pod (docs/z2jh/).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jupyterhub.spawner import SimpleLocalProcessSpawner
from traitlets import Bool, Unicode

from tools.hub import course, limits


class AtlabSpawner(SimpleLocalProcessSpawner):  # type: ignore[misc]
    course_root = Unicode(help="the atlab checkout whose course is copied").tag(config=True)
    course_solutions = Bool(False, help="copy exercises/solutions/ too").tag(config=True)
    limits_mode = Unicode(
        "rlimit", help="how mem_limit/cpu_limit are enforced: cgroup-v1 or rlimit (limits.py)",
    ).tag(config=True)

    _procs: list[Path]

    def _limits(self) -> limits.Limits | None:
        if not self.mem_limit:
            return None
        return limits.Limits(self.limits_mode, int(self.mem_limit), float(self.cpu_limit or 0))

    def make_preexec_fn(self, name: str) -> Callable[[], None]:
        home = self.home_dir
        lim = self._limits()
        apply = limits.preexec(lim, self._procs) if lim else None

        def preexec() -> None:
            if apply is not None:
                apply()
            os.chdir(home)

        return preexec

    def get_env(self) -> dict[str, str]:
        env: dict[str, str] = super().get_env()
        lab = Path(self.home_dir) / ".jupyter" / "lab"
        env["JUPYTERLAB_SETTINGS_DIR"] = str(lab / "user-settings")  # course.LAB_SETTINGS
        env["JUPYTERLAB_WORKSPACES_DIR"] = str(lab / "workspaces")
        return env

    async def start(self) -> Any:
        home = Path(self.home_dir)
        home.mkdir(parents=True, exist_ok=True)
        copied = course.copy_course(Path(self.course_root), home,
                                    solutions=self.course_solutions)
        if copied:
            self.log.info("course: %d file(s) copied to %s", len(copied), home)
        lim = self._limits()
        self._procs = limits.prepare(lim, self.user.name) if lim else []
        return await super().start()

    async def stop(self, now: bool = False) -> None:
        await super().stop(now=now)
        lim = self._limits()
        if lim:
            limits.release(lim, self.user.name)
