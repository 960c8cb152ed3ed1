"""Cost of the progress store's operations a notebook uses: mark, version, view, summary.

Prints milliseconds per call on a store holding a realistic and a large number of events.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from dtcourse.runtime.progress import ProgressStore


def per_call_ms(action: Callable[[], object], repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        action()
    return (time.perf_counter() - start) * 1000 / repeat


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = ProgressStore(Path(folder) / "progress.sqlite")
        items = [item.id for item in store.syllabus.trackable_items()]
        counter = iter(range(10**9))
        mark = per_call_ms(lambda: store.mark(items[next(counter) % len(items)]), 200)
        print(f"progress: mark {mark:.2f} ms/event (durable commit)")
        for total in (200, 20_000):
            missing = total - store.version()
            if missing > 0:
                store.mark_many([items[n % len(items)] for n in range(missing)])
            print(
                f"progress: {total} events: version {per_call_ms(store.version, 200):.2f} ms, "
                f"view {per_call_ms(store.view, 20):.1f} ms, "
                f"summary {per_call_ms(store.summary, 20):.1f} ms, "
                f"checklist {per_call_ms(store.checklist, 20):.1f} ms"
            )


if __name__ == "__main__":
    main()
