"""Widget responsiveness: how long a click takes before the checklist shows its effect.

A tick in the checklist appends one event and re-reads the store (view, checklist and
minutes), so its cost grows with the number of events. Measured on a fresh store and on
one with ``--events`` events already recorded (a heavy student ticking back and forth).
Also the cost of building each widget and of ``refresh_if_changed`` when nothing changed.
Target: a tick under 100 ms with 10,000 events.

Times are wall-clock milliseconds, the median of ``--repeat`` runs.
Run: ``.venv/bin/python bench/bench_widgets.py [--events 10000] [--repeat 20]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from dtcourse.runtime.progress import ProgressStore
from dtcourse.runtime.widgets import checklist, resource_list


def median_ms(action: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def measure(store: ProgressStore, label: str, repeat: int) -> None:
    board = checklist(store)
    video = store.syllabus.videos[0].id
    tick = board.ticks[video]

    def click() -> None:
        tick.value = not tick.value

    print(f"[{label}] events in store: {store.version()}")
    build = median_ms(lambda: checklist(store), repeat)
    print(f"[{label}] build checklist:        {build:8.1f} ms")
    print(
        f"[{label}] build resource list:    "
        f"{median_ms(lambda: resource_list('phase2', store), repeat):8.1f} ms"
    )
    print(f"[{label}] tick (write + refresh): {median_ms(click, repeat):8.1f} ms")
    print(f"[{label}] refresh:                {median_ms(board.refresh, repeat):8.1f} ms")
    print(
        f"[{label}] refresh_if_changed:     "
        f"{median_ms(board.refresh_if_changed, repeat):8.1f} ms (no change)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        fresh = ProgressStore(Path(folder) / "fresh.sqlite")
        measure(fresh, "fresh", args.repeat)
        busy = ProgressStore(Path(folder) / "busy.sqlite")
        ids = [item.id for item in busy.syllabus.trackable_items()]
        batch = [ids[i % len(ids)] for i in range(args.events)]
        for start in range(0, len(batch), 500):
            busy.mark_many(batch[start : start + 500], "bench")
        measure(busy, f"{args.events} events", args.repeat)


if __name__ == "__main__":
    main()
