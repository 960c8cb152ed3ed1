"""Two-phase commit against single-database transactions, on SQLite and on PostgreSQL.

Prints throughput, latency (p50, p95) and forced writes per transfer. Forced writes are
the durable commits the code issues: the coordinator's commit record, each participant's
prepare and its commit (SQLite: WAL with synchronous=FULL; PostgreSQL: a durable
throwaway cluster with fsync=on, synchronous_commit=on). Run: python bench/bench_db.py
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from dtcourse.db import Coordinator, DecisionLog, ResourceManager, Update
from dtcourse.db.bank import Transfer, create_bank, home, plan_transfers, transfer_work
from dtcourse.db.pgcluster import find_pg_bin, throwaway_cluster
from dtcourse.db.postgres_rm import PostgresResourceManager
from dtcourse.db.sqlite_rm import SqliteResourceManager

ACCOUNTS = 20


def measure(coordinator: Coordinator, plan: list[Transfer], participants: int) -> dict:
    latencies = []
    forced = coordinator.forced_writes
    started = time.perf_counter()
    for index, transfer in enumerate(plan):
        begin = time.perf_counter()
        if participants == 1:
            name = home(transfer.source, 1)
            updates = [Update(transfer.source, -transfer.amount),
                       Update(transfer.target, transfer.amount)]
            outcome = coordinator.run_one_phase(f"x{index}", name, updates)
        else:
            outcome = coordinator.run(f"x{index}", transfer_work(transfer, participants))
        assert outcome.committed, outcome.reason
        latencies.append(time.perf_counter() - begin)
    seconds = time.perf_counter() - started
    return {
        "tps": len(plan) / seconds,
        "p50": statistics.median(latencies) * 1000,
        "p95": statistics.quantiles(latencies, n=20)[18] * 1000,
        "forced": (coordinator.forced_writes - forced) / len(plan),
    }


def run_case(rms: list[ResourceManager], folder: Path, transfers: int, seed: int) -> dict:
    log = DecisionLog(folder / f"coordinator-{len(rms)}.db")
    create_bank(rms, ACCOUNTS, log)
    plan = plan_transfers(random.Random(seed), ACCOUNTS, len(rms), transfers)
    result = measure(Coordinator(log, rms), plan, len(rms))
    log.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transfers", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows = []
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dtc-bench-")))
        for participants in (1, 2):
            sub = folder / f"sqlite{participants}"
            sub.mkdir()
            rms = [stack.enter_context(SqliteResourceManager(sub / f"p{i + 1}.db", f"p{i + 1}"))
                   for i in range(participants)]
            rows.append(("sqlite", participants, run_case(rms, sub, args.transfers, args.seed)))
        if find_pg_bin() is None:
            print("PostgreSQL binaries missing: install the Debian package 'postgresql'")
        else:
            cluster = stack.enter_context(throwaway_cluster(durable=True))
            for participants in (1, 2):
                dsns = [cluster.createdb(f"b{participants}_{i}") for i in range(participants)]
                rms = [stack.enter_context(PostgresResourceManager(dsn, f"p{i + 1}"))
                       for i, dsn in enumerate(dsns)]
                rows.append(("postgres", participants,
                             run_case(rms, folder, args.transfers, args.seed)))
    print(f"{args.transfers} transfers each; latency in ms")
    print(f"{'backend':<9} {'kind':<24} {'tps':>8} {'p50':>7} {'p95':>7} {'forced/transfer':>16}")
    for backend, participants, r in rows:
        kind = "single database (1PC)" if participants == 1 else "2PC over 2 databases"
        print(f"{backend:<9} {kind:<24} {r['tps']:>8.1f} {r['p50']:>7.2f} {r['p95']:>7.2f} "
              f"{r['forced']:>16.2f}")


if __name__ == "__main__":
    main()
