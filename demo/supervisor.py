"""A small process manager: starts gridbus processes, restarts one that crashes, stops all on exit."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Managed:
    name: str
    args: list[str]
    env: dict = field(default_factory=dict)   # on top of the supervisor's
    popen: subprocess.Popen | None = None
    restarts: int = 0
    log: Path | None = None


@dataclass
class Supervisor:
    env: dict
    log_dir: Path
    processes: list[Managed] = field(default_factory=list)
    _stopping: threading.Event = field(default_factory=threading.Event)

    def add(self, name: str, *args: str, env: dict | None = None) -> Managed:
        proc = Managed(name, list(args), dict(env or {}), log=self.log_dir / f"{name}.log")
        self.processes.append(proc)
        self._start(proc)
        return proc

    def _start(self, proc: Managed) -> None:
        out = open(proc.log, "ab")
        proc.popen = subprocess.Popen(proc.args, cwd=ROOT, env={**self.env, **proc.env}, stdout=out, stderr=subprocess.STDOUT,
                                      start_new_session=True)

    def watch(self) -> None:
        """Restarts crashed processes until stop(); run it in a thread."""
        while not self._stopping.wait(0.5):
            for proc in self.processes:
                if proc.popen.poll() is not None and not self._stopping.is_set():
                    proc.restarts += 1
                    print(f"[supervisor] {proc.name} exited with {proc.popen.returncode}; restarting "
                          f"(see {proc.log})", file=sys.stderr)
                    time.sleep(min(proc.restarts, 5))
                    self._start(proc)

    def stop(self) -> None:
        self._stopping.set()
        for proc in self.processes:
            if proc.popen and proc.popen.poll() is None:
                os.killpg(proc.popen.pid, signal.SIGTERM)
        for proc in self.processes:
            try:
                proc.popen.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.popen.pid, signal.SIGKILL)
