"""``dtcourse simulate``: seeded runs of a reference protocol with injected faults."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from dtcourse.cli._load import add_rule_option, rule_of


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="simulate a commit protocol with latency and faults",
        description=(
            "Run 2PC or 3PC once (or --runs times with random faults) with message latency, "
            "loss and scheduled or random crashes and partitions. The same seed gives the "
            "same run. Prints messages by type, forced and lazy log writes, message hops on "
            "the critical path and each node's time to decision. 3PC runs with the "
            "termination rule given by --rule."
        ),
        epilog="exit status: 0 atomicity held in every run; 1 some run broke it; 2 bad input.",
    )
    parser.add_argument("protocol", choices=("2pc", "3pc"))
    add_rule_option(parser)
    parser.add_argument("--participants", "-n", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", type=int, default=1, help="more than 1: a seeded chaos run")
    parser.add_argument("--votes", choices=("yes", "no", "any"), default="yes")
    parser.add_argument("--loss", type=float, default=0.0, help="message loss probability")
    parser.add_argument(
        "--duplicate", type=float, default=0.0, help="message duplication probability"
    )
    parser.add_argument(
        "--crash", action="append", default=[], metavar="NODE@T", help="crash NODE at time T"
    )
    parser.add_argument(
        "--recover",
        action="append",
        default=[],
        metavar="NODE@T",
        help="recover NODE at time T",
    )
    parser.add_argument(
        "--partition",
        action="append",
        default=[],
        metavar="[A,B|C,D@]T",
        help="split the network at time T (default split: coordinator and the first half of "
        "the participants against the rest)",
    )
    parser.add_argument("--heal", action="append", default=[], type=float, metavar="T")
    parser.add_argument(
        "--crash-probability",
        type=float,
        default=0.0,
        help="per node, the chance of one crash at a random time",
    )
    parser.add_argument(
        "--recover-after", type=float, help="random crashes recover after this long"
    )
    parser.add_argument(
        "--latency",
        default="uniform:0.5:1.5",
        help="constant:D, uniform:LOW:HIGH or exponential:MIN:MEAN (default uniform:0.5:1.5)",
    )
    parser.add_argument("--timeout", type=float, default=5.0, help="timer duration")
    parser.add_argument("--horizon", type=float, default=100.0, help="stop at this time")
    timing = parser.add_mutually_exclusive_group()
    timing.add_argument("--async", dest="timing", action="store_const", const="async")
    timing.add_argument("--perfect", dest="timing", action="store_const", const="perfect")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--trace", action="store_true", help="print every event of the run")
    parser.add_argument("--plot", type=Path, metavar="FILE", help="write a sequence diagram PNG")
    parser.add_argument(
        "--save-trace",
        type=Path,
        metavar="FILE",
        help="save the run (with --runs, the first failing one) for dtcourse replay",
    )
    parser.set_defaults(func=run, timing=None)


def parse_at(text: str, what: str) -> tuple[str, float]:
    from dtcourse.errors import ModelError

    node, sep, at = text.rpartition("@")
    try:
        if not sep or not node:
            raise ValueError
        return node, float(at)
    except ValueError:
        raise ModelError(f"--{what} takes NODE@TIME, e.g. P1@2.5; got {text!r}") from None


def parse_partition(text: str, names: tuple[str, ...]) -> tuple[Any, float]:
    from dtcourse.errors import ModelError

    groups_text, sep, at = text.rpartition("@")
    try:
        time = float(at)
    except ValueError:
        raise ModelError(
            f"--partition takes [A,B|C,D@]TIME, e.g. 4 or C,P1|P2,P3@4; got {text!r}"
        ) from None
    if not sep:
        participants = names[1:]
        half = (len(participants) + 1) // 2
        return (tuple(names[:1] + participants[:half]), tuple(participants[half:])), time
    sides = groups_text.split("|")
    if len(sides) != 2:
        raise ModelError(f"a partition has two sides separated by '|', got {groups_text!r}")
    return tuple(tuple(n.strip() for n in side.split(",") if n.strip()) for side in sides), time


def parse_latency(text: str) -> Any:
    from dtcourse.engine.sim import Latency
    from dtcourse.errors import ModelError

    kind, *numbers = text.split(":")
    try:
        values = [float(n) for n in numbers]
    except ValueError:
        values = []
    if kind == "constant" and len(values) == 1:
        return Latency("constant", values[0], values[0])
    if kind in ("uniform", "exponential") and len(values) == 2:
        return Latency(kind, values[0], values[1])  # type: ignore[arg-type]
    raise ModelError(
        f"--latency must be constant:D, uniform:LOW:HIGH or exponential:MIN:MEAN; got {text!r}"
    )


def run(args: argparse.Namespace) -> int:
    from dtcourse.commit.protocols import build
    from dtcourse.engine.sim import Fault, chaos, simulate
    from dtcourse.engine.trace_text import text_sequence
    from dtcourse.errors import ModelError

    if args.runs < 1:
        raise ModelError(f"--runs must be at least 1, got {args.runs}")
    from dtcourse.cli._load import rule_spec
    from dtcourse.cli.check import origin

    rule = rule_of(args, args.protocol)
    extra = {} if rule is None else {"rule": rule}
    system = build(args.protocol, args.participants, votes=args.votes, timing=args.timing, **extra)
    spec = rule_spec(args)
    system.origin = origin(
        "dtcourse.cli._load:build_with_rule",
        args.protocol,
        args.participants,
        votes=args.votes,
        timing=args.timing,
        **({} if spec is None else {"rule": spec}),
    )
    faults: list[Fault] = []
    for text in args.crash:
        node, at = parse_at(text, "crash")
        faults.append(Fault(at, "crash", node))
    for text in args.recover:
        node, at = parse_at(text, "recover")
        faults.append(Fault(at, "recover", node))
    for text in args.partition:
        groups, at = parse_partition(text, system.names)
        faults.append(Fault(at, "partition", groups=groups))
    faults.extend(Fault(at, "heal") for at in args.heal)
    options: dict[str, Any] = {
        "latency": parse_latency(args.latency),
        "timeout": args.timeout,
        "loss": args.loss,
        "duplicate": args.duplicate,
        "faults": faults,
        "crash_probability": args.crash_probability,
        "recover_after": args.recover_after,
        "horizon": args.horizon,
    }
    if args.runs > 1:
        result = chaos(system, args.runs, args.seed, **options)
        if args.json:
            print(json.dumps(result.to_dict(), indent=2))
        else:
            print(f"{system!r}")
            print(
                f"{result.runs} runs from seed {result.seed} in {result.seconds:.2f} s "
                f"({result.runs_per_second:,.0f} runs/s); outcomes: {result.outcomes}"
            )
            if result.ok:
                print("atomicity held in every run")
            else:
                first = result.failures[0]
                print(
                    f"VIOLATED in {len(result.failing_seeds)} runs "
                    f"({', '.join(first.violations)}); first failing seed {first.seed}:"
                )
                print(text_sequence(first.trace))
        if args.plot and result.failures:
            write_plot(result.failures[0].trace, args.plot)
        if args.save_trace is not None:
            if result.failures:
                save(result.failures[0].trace, args.save_trace, args.json)
            else:
                print(f"no failing run to save: {args.save_trace} not written")
        return 0 if result.ok else 1
    single = simulate(system, seed=args.seed, **options)
    if args.json:
        print(json.dumps(single.to_dict(), indent=2))
    else:
        print_single(system, single, args.trace)
    if args.plot:
        write_plot(single.trace, args.plot)
    if args.save_trace is not None:
        save(single.trace, args.save_trace, args.json)
    return 0 if single.ok else 1


def save(trace: Any, target: Path, quiet: bool) -> None:
    import sys

    from dtcourse.errors import DTCourseError

    try:
        trace.save(target)
    except OSError as error:
        raise DTCourseError(f"cannot write the trace to {target}: {error.strerror}") from None
    line = f"run saved to {target}; replay it with: dtcourse replay {target}"
    print(line, file=sys.stderr if quiet else sys.stdout)


def print_single(system: Any, result: Any, show_trace: bool) -> None:
    metrics = result.metrics
    from dtcourse.engine.trace_text import text_sequence

    print(f"{system!r}, seed {result.seed}")
    if show_trace:
        print(text_sequence(result.trace))
    print(f"decisions: {result.decisions or 'none'}")
    print(f"messages: {sum(metrics.messages.values())} {metrics.messages}")
    print(f"forced writes: {metrics.forced_writes}; lazy writes: {metrics.lazy_writes}")
    print(f"critical path: {metrics.critical_path_hops} message hops to the last decision")
    times = ", ".join(f"{n} {t:.2f}" for n, t in metrics.decision_times.items())
    print(f"time to decision: {times or 'nobody decided'}")
    print("atomicity held" if result.ok else f"VIOLATED: {', '.join(result.violations)}")


def write_plot(trace: Any, path: Path) -> None:
    from dtcourse.errors import DTCourseError
    from dtcourse.pictures.sequence import sequence_diagram

    figure = sequence_diagram(trace)
    try:
        figure.savefig(path, format="png")
    except OSError as error:
        raise DTCourseError(f"cannot write the diagram to {path}: {error.strerror}") from None
    print(f"sequence diagram written to {path}")
