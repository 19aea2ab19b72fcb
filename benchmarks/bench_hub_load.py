"""Load test of a workshop room (issue 18): K simulated learners in headless Chromium.

    python -m benchmarks hub_load --learners 1 5 10 20            # the hub (make hub)
    python -m benchmarks hub_load --mode voila --learners 1 5 10  # make workshop (Voila)
    python -m benchmarks hub_load --mode both --learners 1 5 10 20

Each learner arrives ``--ramp`` seconds after the previous one, logs in (hub), opens chapter
02 and runs it, steps the walk stepper ``--steps`` times with a think time of 1-3 s (seeded),
re-runs one cell, then (hub only: Voila serves read-only chapters) opens exercise 01 and runs
its checker.  Measured per K:

- widget response: click on the stepper's Step -> its counter changes, in the page (ms);
- cell execution: one cell re-run (Ctrl+Enter -> its prompt number changes) (ms); chapter 02
  Run All -> last widget rendered (s); the checker (Run All -> its verdict) (s); spawn (login
  -> JupyterLab idle) (s);
- memory: peak RSS and PSS of each learner's kernel(s) and server (MiB), sampled every second;
- CPU: the hub's and the proxy's (or Voila's) CPU time over the run, as % of one core.

The verdict per mode: the first K whose 95th percentile widget response passes 1 s, or whose
memory use would not fit; then learners per GB (from PSS) and per core (from the largest K
that stayed under 1 s).  The browser runs on the same machine, so these are pessimistic.
Results: artifacts/bench/hub_load.json and a table on stdout (docs/workshop.md, "Sizing").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
ARTEFACT = ROOT / "artifacts" / "bench" / "hub_load.json"
CHAPTER = "notebooks/02_stage1_walk.ipynb"
EXERCISE = "exercises/01_decode_descriptor.ipynb"
PASSWORD = "bench-room-pw"
P95_LIMIT_MS = 1000.0
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]

# click -> the watched element changes (as tests/test_browser.py measures widgets)
_MEASURE_JS = """
async ([selector, watch]) => {
  const target = document.querySelector(watch);
  if (!target) throw new Error('no element ' + watch);
  return await new Promise((resolve, reject) => {
    const t0 = performance.now();
    const obs = new MutationObserver(() => { obs.disconnect(); resolve(performance.now() - t0); });
    obs.observe(target, {subtree: true, childList: true, characterData: true});
    setTimeout(() => { obs.disconnect(); reject(new Error('no update of ' + watch)); }, 30000);
    document.querySelector(selector).click();
  });
}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


@dataclass
class Samples:
    widget_ms: list[float] = field(default_factory=list)
    cell_ms: list[float] = field(default_factory=list)
    chapter_s: list[float] = field(default_factory=list)
    checker_s: list[float] = field(default_factory=list)
    spawn_s: list[float] = field(default_factory=list)
    session_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class MemorySampler:
    """Peak RSS/PSS per process of the room, every second, in a thread."""

    def __init__(self, classify: Any) -> None:
        self.classify = classify  # psutil.Process -> (learner, "kernel"|"server") or None
        self.peak: dict[int, tuple[str, str, float, float]] = {}
        self.cpu: dict[int, tuple[str, str, float]] = {}  # last seen CPU seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        import psutil

        me = os.getpid()
        while not self._stop.is_set():
            browsers = set()
            for c in psutil.Process(me).children(recursive=True):
                try:
                    if "chromium" in c.name():
                        browsers.add(c.pid)
                except psutil.NoSuchProcess:  # a renderer that just exited
                    continue
            for p in psutil.process_iter(["cmdline"]):
                try:
                    who = ("_browser", "browser") if p.pid in browsers else self.classify(p)
                    if who is None:
                        continue
                    info = p.memory_full_info()
                    rss, pss = info.rss / 2**20, getattr(info, "pss", info.rss) / 2**20
                    old = self.peak.get(p.pid)
                    if old is None or pss > old[3]:
                        self.peak[p.pid] = (who[0], who[1], max(rss, old[2] if old else 0), pss)
                    t = p.cpu_times()
                    self.cpu[p.pid] = (who[0], who[1], t.user + t.system)
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
            self._stop.wait(1.0)

    def per_learner(self) -> dict[str, dict[str, float]]:
        """learner -> {kernel_rss, kernel_pss, server_rss, server_pss} (MiB, summed)."""
        out: dict[str, dict[str, float]] = {}
        for learner, kind, rss, pss in self.peak.values():
            d = out.setdefault(learner, {"kernel_rss": 0.0, "kernel_pss": 0.0,
                                         "server_rss": 0.0, "server_pss": 0.0})
            d[f"{kind}_rss"] = d.get(f"{kind}_rss", 0.0) + rss
            d[f"{kind}_pss"] = d.get(f"{kind}_pss", 0.0) + pss
        for learner, kind, cpu in self.cpu.values():
            key = f"{kind}_cpu_s"
            d = out.setdefault(learner, {})
            d[key] = d.get(key, 0.0) + cpu
        return out


def _cpu_seconds(pids: list[int]) -> float:
    import psutil

    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def _loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# ---------------------------------------------------------------------------------------------
# the two rooms


class HubRoom:
    mode = "hub"

    def __init__(self, learners: int, workdir: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.state = workdir / "hub"
        self.log = (workdir / "hub.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tools.hub", "--ip", "127.0.0.1", "--port", str(self.port),
             "--learners", str(learners), "--dir", str(self.state), "--password", PASSWORD],
            cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT)})
        _wait_http(f"{self.url}/hub/api/", self.proc)

    def service_pids(self) -> list[int]:
        import psutil

        pids = [self.proc.pid]
        for child in psutil.Process(self.proc.pid).children():
            if "configurable-http-proxy" in " ".join(child.cmdline()):
                pids.append(child.pid)
        return pids

    def classify(self, p: Any) -> tuple[str, str] | None:
        cmd = " ".join(p.info["cmdline"] or [])
        if "ipykernel_launcher" not in cmd and "jupyterhub.singleuser" not in cmd:
            return None
        user = p.environ().get("JUPYTERHUB_USER")
        if not user or not str(p.environ().get("HOME", "")).startswith(str(self.state)):
            return None
        return user, "kernel" if "ipykernel" in cmd else "server"

    def close(self) -> None:
        _stop(self.proc, self.log, 60)


class VoilaRoom:
    mode = "voila"

    def __init__(self, learners: int, workdir: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (workdir / "voila.log").open("wb")
        # the command of `make workshop`, on localhost
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "voila", "--no-browser", f"--port={self.port}",
             "--Voila.ip=127.0.0.1", "--VoilaConfiguration.show_tracebacks=False",
             "--strip_sources=True", str(ROOT / "notebooks")],
            cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT),
                 "JUPYTER_RUNTIME_DIR": str(workdir / "rt")})
        _wait_http(f"{self.url}/voila/tree", self.proc)
        self._learner_of_kernel: dict[int, str] = {}

    def service_pids(self) -> list[int]:
        return [self.proc.pid]

    def classify(self, p: Any) -> tuple[str, str] | None:
        if p.pid == self.proc.pid:
            return "_shared", "server"  # one Voila server for the room
        cmd = " ".join(p.info["cmdline"] or [])
        if "ipykernel" not in cmd or p.ppid() != self.proc.pid:
            return None
        return f"kernel-{p.pid}", "kernel"  # one kernel per open page

    def close(self) -> None:
        _stop(self.proc, self.log, 30)


def _stop(proc: subprocess.Popen[bytes], log: IO[bytes], timeout: float) -> None:
    """SIGTERM the room's server, SIGKILL it after ``timeout`` s, close its log."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer") from None
            time.sleep(0.3)


# ---------------------------------------------------------------------------------------------
# one learner


async def _think(rng: random.Random) -> None:
    await asyncio.sleep(rng.uniform(1.0, 3.0))


async def _idle(page: Any) -> None:
    await page.locator("#jp-main-statusbar").get_by_text("| Idle").wait_for()


async def _run_all(page: Any) -> None:
    ran = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-InputPrompt",
                       has_text=re.compile(r"\[(\*|\d+)\]")).first
    for _ in range(3):
        await page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        await page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()
        try:
            await ran.wait_for(timeout=20_000)
            return
        except Exception:
            await page.keyboard.press("Escape")
    raise RuntimeError("Run All did not start")


async def _steps(page: Any, n: int, rng: random.Random, s: Samples) -> None:
    root = ".atlab-walk-stepper"
    for i in range(n):
        # three steps forward, three back (chapter 02's walk has four reads)
        button = f"{root} .atlab-stepper-step" if i % 6 < 3 else f"{root} .atlab-stepper-back"
        s.widget_ms.append(float(await page.evaluate(
            _MEASURE_JS, [button, f"{root} .atlab-stepper-counter"])))
        await _think(rng)


async def hub_learner(browser: Any, room: HubRoom, i: int, args: Any, s: Samples) -> None:
    rng = random.Random(1000 + i)
    name = f"learner{i:03d}"
    ctx = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await ctx.new_page()
    page.set_default_timeout(args.timeout * 1000)
    start = time.perf_counter()
    try:
        t0 = time.perf_counter()
        await page.goto(f"{room.url}/hub/login")
        await page.fill("#username_input", name)
        await page.fill("#password_input", PASSWORD)
        await page.click("#login_submit")
        while True:  # JupyterHub's spawn throttle (concurrent_spawn_limit): retry later
            await page.wait_for_load_state()
            if "/user/" in page.url:
                break
            body = await page.locator("body").inner_text()
            if "Too many users" in body or "429" in body:
                await asyncio.sleep(5)
                await page.goto(f"{room.url}/hub/spawn")
                continue
            await page.wait_for_url("**/user/**")
        await _idle(page)
        s.spawn_s.append(time.perf_counter() - t0)
        await _think(rng)
        await page.goto(f"{room.url}/user/{name}/lab/tree/{CHAPTER}?reset")
        await page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell").first.wait_for()
        await _idle(page)
        t0 = time.perf_counter()
        await _run_all(page)
        await page.locator(".atlab-walk-stepper .atlab-stepper-counter").wait_for()
        await _idle(page)
        s.chapter_s.append(time.perf_counter() - t0)
        await _think(rng)
        await _steps(page, args.steps, rng, s)
        # re-run the first code cell
        prompt = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell "
                              ".jp-InputPrompt").first
        before = await prompt.inner_text()
        await page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell").first.click()
        t0 = time.perf_counter()
        await page.keyboard.press("Control+Enter")
        await page.wait_for_function(
            "b => { const p = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) "
            ".jp-CodeCell .jp-InputPrompt'); return p && p.innerText !== b "
            "&& !p.innerText.includes('*'); }", arg=before)
        s.cell_ms.append((time.perf_counter() - t0) * 1000)
        await _think(rng)
        await page.goto(f"{room.url}/user/{name}/lab/tree/{EXERCISE}?reset")
        await page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell").first.wait_for()
        await _idle(page)
        t0 = time.perf_counter()
        await _run_all(page)
        await page.get_by_text("decode_s1_descriptor: not attempted").first.wait_for()
        s.checker_s.append(time.perf_counter() - t0)
        s.session_s.append(time.perf_counter() - start)
    except Exception as exc:  # a learner who failed is a result, not a crash
        s.errors.append(f"{name}: {str(exc).splitlines()[0][:200]}")
    finally:
        await ctx.close()


async def voila_learner(browser: Any, room: VoilaRoom, i: int, args: Any, s: Samples) -> None:
    rng = random.Random(1000 + i)
    ctx = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await ctx.new_page()
    page.set_default_timeout(args.timeout * 1000)
    start = time.perf_counter()
    try:
        t0 = time.perf_counter()
        await page.goto(f"{room.url}/voila/render/{Path(CHAPTER).name}")
        await page.locator(".atlab-walk-stepper .atlab-stepper-counter").wait_for()
        s.chapter_s.append(time.perf_counter() - t0)  # Voila runs the chapter on page load
        await _think(rng)
        await _steps(page, args.steps, rng, s)
        s.session_s.append(time.perf_counter() - start)
    except Exception as exc:
        s.errors.append(f"page {i}: {str(exc).splitlines()[0][:200]}")
    finally:
        await ctx.close()


# ---------------------------------------------------------------------------------------------


async def _one_k(mode: str, k: int, args: Any) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    s = Samples()
    with tempfile.TemporaryDirectory(prefix=f"atlab-load-{mode}-") as tmp:
        room: HubRoom | VoilaRoom = (HubRoom(k, Path(tmp)) if mode == "hub"
                                     else VoilaRoom(k, Path(tmp)))
        try:
            load_before = _loadavg()
            pids = room.service_pids()
            cpu0, wall0 = _cpu_seconds(pids), time.perf_counter()
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM,
                                                   args=CHROMIUM_ARGS)
                with MemorySampler(room.classify) as mem:
                    learner = hub_learner if mode == "hub" else voila_learner

                    async def arrive(i: int) -> None:
                        await asyncio.sleep(i * args.ramp)
                        await learner(browser, room, i, args, s)  # type: ignore[arg-type]

                    await asyncio.gather(*(arrive(i) for i in range(k)))
                await browser.close()
            wall = time.perf_counter() - wall0
            cpu = _cpu_seconds(pids) - cpu0
            load_after = _loadavg()
        finally:
            room.close()
    per = mem.per_learner()
    browser_cpu = per.pop("_browser", {}).get("browser_cpu_s", 0.0)
    shared_proc = per.pop("_shared", {})
    shared = shared_proc.get("server_pss", 0.0)

    def med(key: str) -> float:
        vals = [d[key] for d in per.values() if d.get(key, 0) > 0]
        return statistics.median(vals) if vals else float("nan")

    return {
        "mode": mode, "learners": k, "errors": s.errors,
        "widget_ms_median": statistics.median(s.widget_ms) if s.widget_ms else float("nan"),
        "widget_ms_p95": _pct(s.widget_ms, 95), "widget_samples": len(s.widget_ms),
        "cell_ms_median": statistics.median(s.cell_ms) if s.cell_ms else float("nan"),
        "cell_ms_p95": _pct(s.cell_ms, 95),
        "chapter_s_median": statistics.median(s.chapter_s) if s.chapter_s else float("nan"),
        "chapter_s_p95": _pct(s.chapter_s, 95),
        "checker_s_median": statistics.median(s.checker_s) if s.checker_s else float("nan"),
        "spawn_s_median": statistics.median(s.spawn_s) if s.spawn_s else float("nan"),
        "spawn_s_p95": _pct(s.spawn_s, 95),
        "kernel_rss_mib": med("kernel_rss"), "kernel_pss_mib": med("kernel_pss"),
        "server_rss_mib": med("server_rss"), "server_pss_mib": med("server_pss"),
        "server_cpu_s": med("server_cpu_s"), "kernel_cpu_s": med("kernel_cpu_s"),
        # CPU seconds the room spent per learner over the run (kernels, server, a share of
        # the hub/proxy or Voila), and what the simulated learners' browsers spent
        "room_cpu_s_per_learner": (sum(d.get("kernel_cpu_s", 0.0) + d.get("server_cpu_s", 0.0)
                                       for d in per.values())
                                   + cpu) / k,
        "browser_cpu_s_per_learner": browser_cpu / k,
        "session_s_median": statistics.median(s.session_s) if s.session_s else float("nan"),
        "learners_measured": len(per), "shared_server_pss_mib": shared,
        "shared_server_cpu_s": shared_proc.get("server_cpu_s", 0.0),
        "service_cpu_pct": 100 * cpu / wall, "wall_s": wall,
        "load_before": load_before, "load_after": load_after,
    }


def verdict(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Learners per GB (median PSS of a learner's kernel + server) and per core (the largest
    K whose p95 widget response stayed under 1 s, per core of this machine)."""
    import psutil

    cores = os.cpu_count() or 1
    ok = [r for r in rows if r["widget_ms_p95"] <= P95_LIMIT_MS and not r["errors"]]
    over = [r for r in rows if r not in ok]
    per_learner_mib = statistics.median(
        [r["kernel_pss_mib"] + (r["server_pss_mib"] if r["mode"] == "hub" else 0)
         for r in rows if r["kernel_pss_mib"] == r["kernel_pss_mib"]] or [float("nan")])
    shared_mib = max((r["shared_server_pss_mib"] for r in rows), default=0.0)
    best = max((r["learners"] for r in ok), default=0)
    # steady state: a core serves session time / room CPU per learner such learners
    steady = [r["session_s_median"] / r["room_cpu_s_per_learner"] for r in rows
              if r["room_cpu_s_per_learner"] > 0 and r["session_s_median"] == r["session_s_median"]]
    return {
        "largest_k_under_1s": best,
        "first_k_over": min((r["learners"] for r in over), default=None),
        "per_learner_mib": per_learner_mib, "shared_mib": shared_mib,
        "learners_per_gb": 1024 / per_learner_mib if per_learner_mib > 0 else None,
        "learners_per_core_at_least": best / cores,
        "learners_per_core_steady": statistics.median(steady) if steady else None,
        "limit_reached": bool(over),
        "memory_total_gib": psutil.virtual_memory().total / 2**30,
        "cores": cores,
    }


def _table(rows: list[dict[str, Any]]) -> str:
    head = ("mode  K  widget med/p95 ms  cell med/p95 ms  chapter med/p95 s  checker s  "
            "spawn med s  kernel RSS/PSS MiB  server RSS/PSS MiB  server CPU s  svc CPU %  "
            "load before->after"
            "  errors")
    lines = [head]
    for r in rows:
        lines.append(
            f"{r['mode']:5} {r['learners']:2d}  "
            f"{r['widget_ms_median']:6.0f}/{r['widget_ms_p95']:<6.0f}"
            f"    {r['cell_ms_median']:6.0f}/{r['cell_ms_p95']:<6.0f}   "
            f"{r['chapter_s_median']:5.1f}/{r['chapter_s_p95']:<5.1f}        "
            f"{r['checker_s_median']:5.1f}      {r['spawn_s_median']:5.1f}       "
            f"{r['kernel_rss_mib']:4.0f}/{r['kernel_pss_mib']:<4.0f}           "
            f"{r['server_rss_mib']:4.0f}/{r['server_pss_mib']:<4.0f}          "
            f"{r['server_cpu_s'] if r['mode'] == 'hub' else r['shared_server_cpu_s']:5.1f}  "
            f"{r['service_cpu_pct']:5.1f}     {r['load_before']} -> {r['load_after']}"
            f"  {len(r['errors'])}")
    return "\n".join(lines)


def markdown(results: dict[str, Any]) -> str:
    """The measured rows as the Markdown table of docs/workshop.md, "Sizing"."""
    lines = ["| mode | K | widget median / p95 | one cell median / p95 | chapter 02 run "
             "median / p95 | checker | login -> lab median / p95 | per learner PSS (kernels + "
             "server) | room CPU per learner | browser CPU per learner | session | hub+proxy "
             "(Voila) CPU | errors | load avg before -> after |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
             "| ---: | --- |"]
    for mode, res in results["modes"].items():
        for r in res["rows"]:
            cell = (f"{r['cell_ms_median']:.0f} / {r['cell_ms_p95']:.0f} ms"
                    if r["cell_ms_median"] == r["cell_ms_median"] else "n/a")
            checker = (f"{r['checker_s_median']:.1f} s"
                       if r["checker_s_median"] == r["checker_s_median"] else "n/a")
            spawn = (f"{r['spawn_s_median']:.0f} / {r['spawn_s_p95']:.0f} s"
                     if r["spawn_s_median"] == r["spawn_s_median"] else "n/a")
            server = r["server_pss_mib"] if mode == "hub" else 0.0
            lines.append(
                f"| {'hub' if mode == 'hub' else 'Voila'} | {r['learners']} | "
                f"{r['widget_ms_median']:.0f} / {r['widget_ms_p95']:.0f} ms | {cell} | "
                f"{r['chapter_s_median']:.1f} / {r['chapter_s_p95']:.1f} s | {checker} | "
                f"{spawn} | {r['kernel_pss_mib']:.0f} + {server:.0f} MiB | "
                f"{r['room_cpu_s_per_learner']:.1f} s | {r['browser_cpu_s_per_learner']:.1f} s | "
                f"{r['session_s_median']:.0f} s | "
                f"{r['service_cpu_pct']:.0f} % | {len(r['errors'])} | "
                f"{r['load_before'].split()[0]} -> {r['load_after'].split()[0]} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks hub_load",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--learners", type=int, nargs="+", default=[1, 5])
    p.add_argument("--mode", choices=["hub", "voila", "both"], default="hub")
    p.add_argument("--ramp", type=float, default=2.0, help="seconds between arrivals")
    p.add_argument("--steps", type=int, default=8, help="stepper clicks per learner")
    p.add_argument("--timeout", type=float, default=180, help="seconds per browser wait")
    p.add_argument("--stop-over-limit", action="store_true",
                   help="skip larger K once p95 passes 1 s")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    if any(k < 1 or k > 200 for k in args.learners):
        p.error("--learners: each K must be 1-200")
    modes = ["hub", "voila"] if args.mode == "both" else [args.mode]
    results: dict[str, Any] = {"machine": {"cores": os.cpu_count(),
                                            "loadavg_start": _loadavg()}, "modes": {}}
    for mode in modes:
        rows: list[dict[str, Any]] = []
        for k in sorted(args.learners):
            print(f"--> {mode}: {k} learner(s)", flush=True)
            try:
                row = asyncio.run(_one_k(mode, k, args))
            except RuntimeError as exc:  # the room did not start (no proxy, no JupyterHub...)
                print(f"hub_load: {mode} with {k} learner(s): {exc}", file=sys.stderr)
                return 1
            rows.append(row)
            print(_table([row]).splitlines()[1], flush=True)
            for e in row["errors"][:5]:
                print(f"    error: {e}", flush=True)
            if args.stop_over_limit and row["widget_ms_p95"] > P95_LIMIT_MS:
                break
        results["modes"][mode] = {"rows": rows, "verdict": verdict(rows)}
    results["machine"]["loadavg_end"] = _loadavg()
    ARTEFACT.parent.mkdir(parents=True, exist_ok=True)
    ARTEFACT.write_text(json.dumps(results, indent=1), encoding="utf-8")
    for mode, res in results["modes"].items():
        print(f"\n{mode}:\n{_table(res['rows'])}")
        v = res["verdict"]
        print(f"  verdict: p95 widget <= 1 s up to K={v['largest_k_under_1s']}"
              f" (first K over: {v['first_k_over']}); per learner ~{v['per_learner_mib']:.0f}"
              f" MiB PSS -> ~{v['learners_per_gb'] or 0:.1f} learners/GB;"
              f" >= {v['learners_per_core_at_least']:.1f} learners/core with every learner"
              f" active at once; ~{v['learners_per_core_steady'] or 0:.1f} learners/core from"
              " the room's CPU per learner")
    print("\n" + markdown(results))
    print(f"\nload average: start {results['machine']['loadavg_start']}, "
          f"end {results['machine']['loadavg_end']}; written to "
          f"{ARTEFACT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
