"""``dtcourse check``: explore every behaviour of a spec or protocol and report verdicts."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from dtcourse.cli._load import add_rule_option, rule_of, rule_spec

MODELS = ("tcommit", "twophase", "2pc", "3pc")
EXIT_INCOMPLETE = 3


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "check",
        help="model-check a commit specification or protocol",
        description=(
            "Explore every reachable state of a TLA+-style spec (tcommit, twophase) or a "
            "reference protocol (2pc, 3pc) under the given failures, and check the "
            "atomic-commit properties AC1-AC4 and non-blocking. Each protocol runs under its "
            "textbook timing unless told otherwise: 2PC with asynchronous timeouts, 3PC with a "
            "perfect failure detector. The search stops at the first violation and prints its "
            "trace; meanwhile random runs look for deep violations the breadth-first search "
            "would need millions of states to reach (--shortest turns them off, --all searches "
            "on and reports every property). Memory is bounded by default; progress goes to "
            "stderr every few seconds. 3PC runs with the termination rule given by --rule: "
            "your own from exercise p2.threepc, or the reading's deliberately naive one."
        ),
        epilog=(
            "exit status: 0 every property holds and the search was complete; 1 a property is "
            "violated (its trace is printed); 2 bad input; 3 the search stopped at a "
            "limit before finishing, or --simulate met no violation: no violation found so "
            "far, but no proof either."
        ),
    )
    parser.add_argument("model", choices=MODELS, help="what to check")
    parser.add_argument(
        "--participants", "-n", type=int, default=3, help="participants / resource managers"
    )
    faults = parser.add_argument_group("failures and timing (2pc, 3pc)")
    faults.add_argument("--crashes", type=int, default=0, help="crash budget (default 0)")
    faults.add_argument("--recover", action="store_true", help="crashed nodes may recover")
    faults.add_argument("--loss", action="store_true", help="the network may drop messages")
    faults.add_argument(
        "--duplicate", action="store_true", help="the network may duplicate messages"
    )
    faults.add_argument("--partition", action="store_true", help="the network may split once")
    timing = faults.add_mutually_exclusive_group()
    timing.add_argument(
        "--async",
        dest="timing",
        action="store_const",
        const="async",
        help="timers may fire at any moment (asynchronous system)",
    )
    timing.add_argument(
        "--perfect",
        dest="timing",
        action="store_const",
        const="perfect",
        help="perfect failure detector: timers fire only for crashed or cut-off nodes",
    )
    faults.add_argument(
        "--votes",
        choices=("yes", "no", "any"),
        default="any",
        help="how participants vote (any: each may also abort on its own; default)",
    )
    add_rule_option(faults)
    faults.add_argument(
        "--cooperative",
        action="store_true",
        help="2PC: uncertain participants also ask each other (cooperative termination)",
    )
    search = parser.add_argument_group("search")
    search.add_argument(
        "--symmetry",
        action="store_true",
        help="reduce by symmetry over interchangeable participants (skips non-blocking)",
    )
    search.add_argument(
        "--all",
        action="store_true",
        help="keep searching after a violation and report every property (as TLC's -continue)",
    )
    search.add_argument(
        "--shortest",
        action="store_true",
        help="breadth-first search only, no random runs: any trace is a shortest one",
    )
    search.add_argument("--seed", type=int, default=0, help="seed of the random runs (default 0)")
    search.add_argument(
        "--simulate",
        type=int,
        metavar="RUNS",
        help="instead of the exhaustive search, RUNS random runs (for models too big to "
        "exhaust); a clean result is NOT a proof",
    )
    search.add_argument(
        "--depth", type=int, default=100, help="with --simulate: steps per run (default 100)"
    )
    search.add_argument("--max-states", type=int, help="stop after this many distinct states")
    search.add_argument("--max-seconds", type=float, help="stop after this many seconds")
    search.add_argument(
        "--max-memory",
        type=float,
        metavar="GB",
        help="stop before the process uses this much memory (default: 70%% of what is "
        "available when the check starts)",
    )
    parser.add_argument(
        "--save-trace",
        type=Path,
        metavar="FILE",
        help="2pc, 3pc: save the first counterexample (or blocking witness) for dtcourse replay",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.set_defaults(func=run, timing=None)


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation now (Linux and macOS), or None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def memory_budget(args: argparse.Namespace) -> int | None:
    """The memory the search may use: ``--max-memory``, else 70% of what is available."""
    from dtcourse.engine.checker import memory_in_use
    from dtcourse.errors import ModelError

    if args.max_memory is not None:
        if not args.max_memory > 0:
            raise ModelError(f"--max-memory must be a positive number of GB, got {args.max_memory}")
        return int(args.max_memory * 2**30)
    available, used = available_memory(), memory_in_use()
    if available is None or used is None:
        return None
    return used + int(0.7 * available)


def build_model(args: argparse.Namespace) -> Any:
    """The spec or actor system the arguments describe."""
    from dtcourse.errors import ModelError

    if args.model in ("tcommit", "twophase"):
        used = [
            flag
            for flag, on in (
                ("--crashes", args.crashes),
                ("--recover", args.recover),
                ("--loss", args.loss),
                ("--duplicate", args.duplicate),
                ("--partition", args.partition),
                ("--async/--perfect", args.timing),
                ("--cooperative", args.cooperative),
                ("--rule", args.rule),
            )
            if on
        ]
        if used:
            raise ModelError(
                f"{', '.join(used)}: only for the protocols 2pc and 3pc; the {args.model} "
                "spec has no failures or timers"
            )
        from dtcourse.commit import specs

        return specs.build(args.model, args.participants)
    from dtcourse.commit import protocols

    if args.crashes < 0:
        raise ModelError(f"--crashes must be 0 or more, got {args.crashes}")
    if args.recover and not args.crashes:
        raise ModelError("--recover needs a crash budget: add e.g. --crashes 1")
    options = {
        "votes": args.votes,
        "crashes": args.crashes,
        "recover": args.recover,
        "loss": args.loss,
        "duplicate": args.duplicate,
        "partitions": 1 if args.partition else 0,
        "timing": args.timing,
        "symmetry": args.symmetry,
        "cooperative": args.cooperative,
    }
    rule = rule_of(args, args.model)
    system = protocols.build(args.model, args.participants, **options, rule=rule)
    spec = rule_spec(args)
    system.origin = origin(
        "dtcourse.cli._load:build_with_rule",
        args.model,
        args.participants,
        **options,
        **({} if spec is None else {"rule": spec}),
    )
    return system


def origin(function: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """How to build a system again, for saved traces (``ActorSystem.origin``)."""
    from dtcourse.engine._codec import encode

    return {"function": function, "args": encode(list(args)), "kwargs": encode(kwargs)}


def save_trace(model: Any, result: Any, target: Path, command: str) -> str:
    """Save the first counterexample of ``result`` (or its blocking witness) to ``target``;
    returns the line to print."""
    from dtcourse.errors import DTCourseError

    chosen = next((v for v in result.violations if v.path is not None), None)
    if chosen is None:
        return f"no counterexample to save: {target} not written"
    about = {
        "property": chosen.property,
        "kind": chosen.kind,
        "message": chosen.message,
        "shortest": chosen.shortest,
        "command": command,
    }
    trace = model.trace_of(chosen.path, about)
    try:
        trace.save(target)
    except OSError as error:
        raise DTCourseError(f"cannot write the trace to {target}: {error.strerror}") from None
    return (
        f"trace of {chosen.property!r} saved to {target}; replay it with: dtcourse replay {target}"
    )


def run(args: argparse.Namespace) -> int:
    from dtcourse.engine.actors import ActorSystem
    from dtcourse.engine.checker import check, print_progress
    from dtcourse.engine.trace_text import text_sequence
    from dtcourse.errors import ModelError

    if args.participants < 1:
        raise ModelError(f"--participants must be at least 1, got {args.participants}")
    if args.max_states is not None and args.max_states < 1:
        raise ModelError(f"--max-states must be a positive integer, got {args.max_states}")
    if args.max_seconds is not None and not args.max_seconds > 0:
        raise ModelError(f"--max-seconds must be positive, got {args.max_seconds}")
    if args.all and args.shortest:
        raise ModelError("--all already searches breadth-first only; drop --shortest")
    if args.save_trace is not None and args.model in ("tcommit", "twophase"):
        raise ModelError("--save-trace: only the protocols 2pc and 3pc have node classes to replay")
    model = build_model(args)
    if args.simulate is not None:
        return run_simulation(args, model)
    budget = memory_budget(args)
    progress = None if args.quiet or args.json else print_progress(sys.stderr, every=3.0)
    result = check(
        model,
        symmetry=args.symmetry,
        max_states=args.max_states,
        max_seconds=args.max_seconds,
        max_memory=budget,
        stop_at_first=not args.all,
        hunt=not (args.all or args.shortest),
        seed=args.seed,
        progress=progress,
    )
    actors = model if isinstance(model, ActorSystem) else None
    if args.json:
        data = result.to_dict()
        data["model"] = repr(model) if actors else f"{args.model} ({args.participants} RMs)"
        if actors is not None:
            for entry, violation in zip(data["violations"], result.violations, strict=True):
                entry["events"] = (
                    None
                    if violation.path is None
                    else [asdict(e) for e in actors.trace_of(violation.path).events]
                )
            data["blocking_events"] = (
                None
                if result.blocking is None
                else [asdict(e) for e in actors.trace_of(result.blocking).events]
            )
        print(json.dumps(data, indent=2, default=str))
    else:
        print(f"model: {model!r}" if actors else f"model: {args.model}, {args.participants} RMs")
        print(result.summary())
        if actors is not None:
            for violation in result.violations:
                if violation.path is not None:
                    print(f"\nsequence of events for {violation.property!r}:")
                    print(text_sequence(actors.trace_of(violation.path)))
        for line in hints(result, budget):
            print(line)
    if args.save_trace is not None:
        line = save_trace(model, result, args.save_trace, "dtcourse " + " ".join(sys.argv[1:]))
        print(line, file=sys.stderr if args.json else sys.stdout)
    if result.violations:
        return 1
    return 0 if result.complete else EXIT_INCOMPLETE


def run_simulation(args: argparse.Namespace, model: Any) -> int:
    """``--simulate RUNS``: random runs instead of the exhaustive search."""
    from dtcourse.engine.actors import ActorSystem
    from dtcourse.engine.checker import Violation, default_format_action
    from dtcourse.engine.trace_text import text_sequence
    from dtcourse.engine.walks import random_runs
    from dtcourse.errors import ModelError

    if args.simulate < 1:
        raise ModelError(f"--simulate takes a number of runs >= 1, got {args.simulate}")
    if args.depth < 1:
        raise ModelError(f"--depth must be at least 1, got {args.depth}")
    flags = (
        ("--symmetry", args.symmetry),
        ("--shortest", args.shortest),
        ("--max-states", args.max_states is not None),
    )
    ignored = [flag for flag, on in flags if on]
    if ignored:
        raise ModelError(f"{', '.join(ignored)}: not for --simulate, which keeps no state table")
    result = random_runs(
        model,
        runs=args.simulate,
        depth=args.depth,
        seed=args.seed,
        max_seconds=args.max_seconds,
        stop_at_first=not args.all,
    )
    actors = model if isinstance(model, ActorSystem) else None
    fmt = getattr(model, "format_action", None) or default_format_action
    if args.json:
        data = {
            "model": repr(model) if actors else f"{args.model} ({args.participants} RMs)",
            "mode": "random runs",
            "proof": False,
            "ok": result.ok,
            "runs": result.runs,
            "steps": result.steps,
            "depth": result.depth,
            "longest": result.longest,
            "seed": result.seed,
            "seconds": round(result.seconds, 6),
            "violations": [
                {
                    "property": found.property,
                    "kind": "always",
                    "steps_before_shortening": found.steps,
                    "shortest": False,
                    "trace": [fmt(a) for a in found.path.actions],
                    "events": None
                    if actors is None
                    else [asdict(e) for e in actors.trace_of(found.path).events],
                }
                for found in result.violations
            ],
            "reached": sorted(result.examples),
            "unreached": list(result.unreached),
            "unchecked": list(result.unchecked),
        }
        print(json.dumps(data, indent=2, default=str))
    else:
        print(f"model: {model!r}" if actors else f"model: {args.model}, {args.participants} RMs")
        print(result.summary(fmt))
        if actors is not None:
            for found in result.violations:
                print(f"\nsequence of events for {found.property!r}:")
                print(text_sequence(actors.trace_of(found.path)))
    if args.save_trace is not None:
        violations = [
            Violation(
                f.property,
                "always",
                f.path,
                f"found by a random run of {f.steps} steps, shortened to {len(f.path)}",
                shortest=False,
            )
            for f in result.violations
        ]
        line = save_trace(
            model,
            SimpleNamespace(violations=violations),
            args.save_trace,
            "dtcourse " + " ".join(sys.argv[1:]),
        )
        print(line, file=sys.stderr if args.json else sys.stdout)
    return 1 if result.violations else EXIT_INCOMPLETE


def hints(result: Any, budget: int | None) -> list[str]:
    """What to do next after an early stop."""
    lines = []
    if result.stopped_by == "violation":
        lines.append(
            "\nstopped at the first violation; --all keeps searching and reports every property"
        )
    if any(not v.shortest for v in result.violations):
        lines.append(
            "the trace was found by a random run and shortened; a shorter one may exist "
            "(--shortest searches breadth-first only, which can take much longer)"
        )
    if result.stopped_by == "memory":
        limit = f"{budget / 2**30:.1f} GB" if budget else "the memory limit"
        lines.append(
            f"\nthe search stopped at {result.distinct:,} states to stay within {limit}; "
            "choose how far to search with --max-states N (or allow more with --max-memory "
            "GB), or try random runs with --simulate RUNS --depth D, which need little memory"
        )
    elif result.stopped_by == "states":
        lines.append(f"\nthe search stopped at --max-states {result.distinct:,}")
    return lines
