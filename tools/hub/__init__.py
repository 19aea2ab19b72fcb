"""A JupyterHub for a workshop room on one machine (issue 18): ``make hub`` or
``python -m tools.hub``.

- :mod:`tools.hub.settings`: the room's settings (``HUB_*`` variables or options), each bad
  value a one-line :class:`atlab.errors.AtlabError`;
- :mod:`tools.hub.course`: each learner's own copy of the course, made on every spawn without
  overwriting anything the learner already has;
- :mod:`tools.hub.limits`: per-learner memory and CPU limits (cgroup v1 when writable, else
  ``RLIMIT_AS`` per process), applied in the spawned server before it executes;
- :mod:`tools.hub.spawner`: the spawner (JupyterHub's ``SimpleLocalProcessSpawner`` plus the
  three above);
- ``jupyterhub_config.py``: the configuration JupyterHub loads; ``__main__``: the launcher
  (checks the ports and the proxy, then runs ``jupyterhub``).
"""
