"""A live demonstration: an in-doubt transaction keeps its locks until it is resolved.

A coordinator prepares a transfer at its participants and dies before deciding. Each
participant voted YES, so it may neither commit nor abort on its own: the branch is in
doubt and its locks stay. Another session's update of the same account waits and times
out. An operator then decides the transaction by hand, as ``dtcourse resolve`` does
(``operator_decision``, abort by default), and the same update goes through. Resolving it
automatically is the coordinator's recovery step, exercise ``p2.recovery``, so the demo
shows what the coordinator's log holds next to the decision and leaves the rule to the
student.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from dtcourse.db.bank import (
    Site,
    Transfer,
    create_bank,
    open_site,
    postgres_sites,
    sqlite_sites,
    transfer_work,
)
from dtcourse.db.base import LockTimeout, ResourceManager, Update, Xid
from dtcourse.db.coordinator import Coordinator, DecisionLog
from dtcourse.errors import DatabaseError

__all__ = ["DemoReport", "DemoStep", "in_doubt_lock_demo"]


@dataclass(frozen=True)
class DemoStep:
    title: str
    detail: str


@dataclass(frozen=True)
class DemoReport:
    """The steps of the demonstration and what each showed."""

    backend: str
    steps: tuple[DemoStep, ...]
    in_doubt_before: tuple[str, ...]
    blocked: bool
    in_doubt_after: tuple[str, ...]
    released: bool

    def __str__(self) -> str:
        lines = [f"In-doubt locks on {self.backend}"]
        for number, step in enumerate(self.steps, 1):
            lines.append(f"{number}. {step.title}")
            lines += [f"   {line}" for line in step.detail.splitlines()]
        return "\n".join(lines)


class _CoordinatorDied(Exception):
    """Raised at the crash point to stop the coordinator the way a crash would."""


def _die_after(last_prepare: str) -> Callable[[str], None]:
    def crash(point: str) -> None:
        if point == last_prepare:
            raise _CoordinatorDied(point)

    return crash


def _show_in_doubt(rms: list[ResourceManager]) -> str:
    lines = []
    for rm in rms:
        rows = getattr(rm, "prepared_xacts", None)
        if rows is not None:
            for gid, prepared, owner, database in rows():
                lines.append(
                    f"pg_prepared_xacts at {rm.name}: gid={gid} database={database} "
                    f"owner={owner} prepared={prepared:%H:%M:%S}"
                )
        else:
            locks: dict[int, str] = getattr(rm, "locks", dict)()
            for xid in rm.in_doubt():
                held = [str(a) for a, g in locks.items() if g == xid.gtrid]
                lines.append(
                    f"{rm.name}: prepared {xid.gtrid}, locks on account(s) {', '.join(held)}"
                )
    return "\n".join(lines) or "(none)"


@contextmanager
def _sites(backend: str, dsn: str | None, workdir: Path) -> Iterator[list[Site]]:
    if backend == "sqlite":
        yield sqlite_sites(workdir, 2)
    elif backend == "postgres":
        if dsn:
            yield postgres_sites([dsn])
            return
        from dtcourse.db.pgcluster import throwaway_cluster

        with throwaway_cluster() as cluster:
            yield postgres_sites([cluster.createdb("p1"), cluster.createdb("p2")])
    else:
        raise DatabaseError(f"unknown backend {backend!r}: use 'sqlite' or 'postgres'")


def in_doubt_lock_demo(
    backend: str = "sqlite",
    *,
    dsn: str | None = None,
    workdir: Path | str | None = None,
    lock_timeout: float = 0.5,
    operator_decision: str = "abort",
) -> DemoReport:
    """Run the demonstration and return its steps (``print(report)`` shows them).

    SQLite by default (two participant files in a temporary folder). With
    ``backend="postgres"``: the database at ``dsn`` as the only participant, or, without a
    DSN, two databases in a throwaway cluster (needs the PostgreSQL binaries).
    ``operator_decision`` (``"commit"`` or ``"abort"``) is what the operator decides for the
    in-doubt transaction; either one releases the locks.
    """
    if operator_decision not in ("commit", "abort"):
        raise DatabaseError(
            f"operator_decision is 'commit' or 'abort', not {operator_decision!r}"
        )
    steps: list[DemoStep] = []
    with ExitStack() as stack:
        if workdir is None:
            workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="dtc-demo-"))
        folder = Path(workdir)
        folder.mkdir(parents=True, exist_ok=True)
        sites = stack.enter_context(_sites(backend, dsn, folder))
        log_path = folder / "coordinator.db"

        # The coordinator's process: prepare everywhere, then die before the decision.
        with ExitStack() as crashed:
            log = crashed.enter_context(DecisionLog(log_path))
            rms = [crashed.enter_context(open_site(s, lock_timeout)) for s in sites]
            create_bank(rms, accounts=2, log=log)
            transfer = Transfer(source=0, target=1, amount=30)
            work = transfer_work(transfer, len(rms))
            steps.append(DemoStep(
                "Bank created",
                f"accounts {rms[0].balances() | rms[-1].balances()} at "
                f"{', '.join(rm.name for rm in rms)}; transfer 30 from account 0 to 1",
            ))
            crash = _die_after(f"after-prepare:{len(work)}")
            with suppress(_CoordinatorDied):
                Coordinator(log, rms, crash=crash).run("demo-1", work)
            steps.append(DemoStep(
                "Every participant voted YES, then the coordinator crashed",
                "no decision was logged; the participants cannot decide alone",
            ))

        # Another client, while the transaction is in doubt.
        with ExitStack() as session:
            rms = [session.enter_context(open_site(s, lock_timeout)) for s in sites]
            before = _in_doubt(rms)
            steps.append(DemoStep("In-doubt transactions", _show_in_doubt(rms)))
            blocked, message = _try_debit(rms[0], "client-1")
            steps.append(DemoStep(
                "Another session updates account 0",
                ("blocked: " if blocked else "not blocked: ") + message,
            ))

            log = session.enter_context(DecisionLog(log_path))
            coordinator = Coordinator(log, rms)
            branches = [b for b in coordinator.in_doubt() if b.gtrid == "demo-1"]
            records = [e.gtrid for e in log.entries()]
            for branch in branches:
                coordinator.resolve(branch, commit=operator_decision == "commit")
            logged = log.decision("demo-1")
            command = f"dtcourse resolve demo-1 --{operator_decision}"
            if operator_decision != logged:
                command += " --force  (a heuristic decision, against the log)"
            steps.append(DemoStep(
                f"An operator decides: {operator_decision} demo-1",
                f"the coordinator's log holds commit records for: {records or 'nothing'}\n"
                f"{command}: "
                f"{'committed' if operator_decision == 'commit' else 'rolled back'} "
                f"{len(branches)} branch(es) at "
                f"{', '.join(b.participant for b in branches) or 'no participant'}",
            ))
            after = _in_doubt(rms)
            still_blocked, message = _try_debit(rms[0], "client-1")
            steps.append(DemoStep(
                "The same update again",
                ("still blocked: " if still_blocked else "went through: ") + message,
            ))
            steps.append(DemoStep("In-doubt transactions", _show_in_doubt(rms)))
    return DemoReport(
        backend=backend,
        steps=tuple(steps),
        in_doubt_before=before,
        blocked=blocked,
        in_doubt_after=after,
        released=not still_blocked,
    )


def _in_doubt(rms: list[ResourceManager]) -> tuple[str, ...]:
    return tuple(f"{rm.name}:{xid.gtrid}" for rm in rms for xid in rm.in_doubt())


def _try_debit(rm: ResourceManager, label: str) -> tuple[bool, str]:
    """A single-site debit of 1 from account 0, as an ordinary client would run it."""
    xid = Xid(label, rm.name)
    rm.begin(xid)
    try:
        rm.execute(xid, Update(0, -1))
    except LockTimeout as error:
        rm.rollback(xid)
        return True, str(error)
    if rm.commit_one_phase(xid):
        return False, f"balance of account 0 is now {rm.balances()[0]}"
    return False, "the participant refused the update"
