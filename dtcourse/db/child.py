"""Entry point of the crash torture's child process: run transfers until killed.

``python -m dtcourse.db.child CONFIG.json``. The child prints ``ready`` once its
connections are open, then runs its transfers through a real coordinator. At the named
crash point it ends itself at once (``die``); the parent may also kill it at any moment. Journal
lines (``begin``, ``ack``, ``abort``) are appended with one ``write`` each, so a kill
tears at most the last line.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

from dtcourse.db.bank import KILLED_EXIT, Site, Transfer, open_site, transfer_work
from dtcourse.db.coordinator import Coordinator, DecisionLog


def die() -> None:
    """End this process the way a crash does: no cleanup, no flush, no exception handler.

    SIGKILL where the platform has it (what the torture was built on); elsewhere
    ``os._exit``, which also skips every Python-level cleanup, with ``KILLED_EXIT``.
    """
    sigkill = getattr(signal, "SIGKILL", None)
    if sigkill is not None:
        os.kill(os.getpid(), sigkill)
    os._exit(KILLED_EXIT)


def main(argv: list[str]) -> int:
    config = json.loads(Path(argv[0]).read_text())
    options = {"lock_timeout": config["lock_timeout"], "synchronous": config["synchronous"]}
    rms = [open_site(Site(**site), **options) for site in config["sites"]]
    log = DecisionLog(config["log"])
    current = {"index": -1}

    def crash(point: str) -> None:
        if current["index"] == config["crash_index"] and point == config["crash_point"]:
            die()

    coordinator = Coordinator(log, rms, crash=crash)
    with open(config["journal"], "a", buffering=1) as journal:

        def ack(gtrid: str) -> None:
            journal.write(f"ack {gtrid}\n")

        print("ready", flush=True)
        for index, raw in enumerate(config["transfers"]):
            current["index"] = index
            work = transfer_work(Transfer(**raw), config["participants"])
            gtrid = f"{config['prefix']}-{config['first'] + index}"
            journal.write(f"begin {gtrid} {','.join(work)}\n")
            outcome = coordinator.run(gtrid, work, on_commit=ack)
            if not outcome.committed:
                journal.write(f"abort {gtrid}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
