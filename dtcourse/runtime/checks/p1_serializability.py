"""Visible checks of p1.serializability: the reading's histories, with expected results.

No precedence graph is computed here. The expected edges, per site and global, and
whether each history is serializable come from the instructor's build
(``data/p1.serializability.json``); the anomaly's name is stored only as a salted hash. A
serial order is judged by a property (every committed transaction once, every edge
respected), so any valid order passes. The graded hidden tests call the same judges with
cases of their own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dtcourse.lessons.histories import (
    ANOMALIES,
    Edge,
    History,
    aborted,
    committed,
    conflicts,
    format_history,
    parse_history,
    txn_sort_key,
)
from dtcourse.runtime.checks import Exercise
from dtcourse.runtime.checks.casedata import load_cases, matches_digest

__all__ = [
    "EXERCISE",
    "Analyse",
    "Case",
    "anomaly_salt",
    "judge_anomaly",
    "judge_edges",
    "judge_sites",
    "judge_verdict",
    "visible_cases",
    "visible_histories",
]

EXERCISE_ID = "p1.serializability"

Analyse = Callable[[History], Any]


def anomaly_salt(history: str) -> str:
    """The salt of a history's anomaly digest: one per history, so equal names differ."""
    return f"{EXERCISE_ID} {history}"


def _edge_set(pairs: Iterable[Sequence[str]]) -> frozenset[Edge]:
    return frozenset((str(a), str(b)) for a, b in pairs)


@dataclass(frozen=True)
class Case:
    """One history and what a correct ``analyse`` says about it."""

    history: str
    sites: Mapping[str, frozenset[Edge]]
    edges: frozenset[Edge]
    serializable: bool
    anomaly_digest: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Case:
        return cls(
            history=str(data["history"]),
            sites={str(site): _edge_set(pairs) for site, pairs in data["sites"].items()},
            edges=_edge_set(data["edges"]),
            serializable=bool(data["serializable"]),
            anomaly_digest=str(data["anomaly"]),
        )


def visible_cases() -> tuple[Case, ...]:
    """The reading's histories with their expected results, as the build wrote them."""
    return tuple(Case.from_json(item) for item in load_cases(EXERCISE_ID)["histories"])


def visible_histories() -> tuple[str, ...]:
    """The reading's histories, to try ``analyse`` on before asking for feedback."""
    return tuple(case.history for case in visible_cases())


# --- reading the student's answer ---------------------------------------------------------


def _field(verdict: Any, name: str) -> Any:
    if isinstance(verdict, Mapping):
        if name not in verdict:
            raise AssertionError(f"your verdict has no {name!r}; return a Verdict(...)")
        return verdict[name]
    if not hasattr(verdict, name):
        raise AssertionError(
            f"your verdict ({type(verdict).__name__}) has no {name!r}; return a Verdict(...)"
        )
    return getattr(verdict, name)


def _call(analyse: Analyse, history: History) -> Any:
    try:
        return analyse(history)
    except (AssertionError, NotImplementedError):
        raise
    except Exception as error:
        raise AssertionError(
            f"your function raised {type(error).__name__}: {error} on "
            f"{format_history(history)}"
        ) from None


def _edges(value: Any, history: str, what: str = "edges") -> frozenset[Edge]:
    problem = AssertionError(
        f"{history}: {what} must be a set of (from, to) pairs like ('T1', 'T2'), not {value!r}"
    )
    if isinstance(value, str | bytes | Mapping):
        raise problem
    try:
        pairs = list(value)
    except TypeError:
        raise problem from None
    found = set()
    for pair in pairs:
        if isinstance(pair, str | bytes) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise problem
        found.add((str(pair[0]), str(pair[1])))
    return frozenset(found)


def _is_verdict(result: Any) -> bool:
    if isinstance(result, Mapping):
        return "edges" in result
    return hasattr(result, "edges")


def _site_map(result: Any, history: str) -> dict[str, frozenset[Edge]]:
    """The per-site edges from a ``site_edges`` result, or from a verdict's ``sites``."""
    value = _field(result, "sites") if _is_verdict(result) else result
    if not isinstance(value, Mapping):
        raise AssertionError(
            f"{history}: the edges per site must be a mapping like {{'A': {{('T1', 'T2')}}}}, "
            f"not {value!r}"
        )
    found = {
        str(site): _edges(edges, history, f"the edges of site {site}")
        for site, edges in value.items()
    }
    return {site: edges for site, edges in found.items() if edges}


# --- explaining an edge ---------------------------------------------------------------------


def _arrow(edge: Edge) -> str:
    return f"{edge[0]} → {edge[1]}"


def _sorted(edges: Iterable[Edge]) -> list[Edge]:
    return sorted(edges, key=lambda e: (txn_sort_key(e[0]), txn_sort_key(e[1])))


def _missing(history: History, edge: Edge, site: str | None) -> str:
    for conflict in conflicts(history):
        if conflict.edge == edge and (site is None or conflict.first.site == site):
            return f"the edge {_arrow(edge)} is missing; it comes from the conflict {conflict}"
    return f"the edge {_arrow(edge)} is missing"


def _extra(history: History, edge: Edge, site: str | None) -> str:
    gone = sorted(set(edge) & aborted(history), key=txn_sort_key)
    if gone:
        return (
            f"the edge {_arrow(edge)} is not in the precedence graph: {gone[0]} aborts, and "
            "an aborted transaction has no node and no edge"
        )
    elsewhere = [
        conflict for conflict in conflicts(history)
        if conflict.edge == edge and site is not None and conflict.first.site != site
    ]
    if elsewhere:
        return (
            f"the edge {_arrow(edge)} is not in site {site}'s graph: its conflict "
            f"{elsewhere[0]} is at site {elsewhere[0].first.site}"
        )
    return (
        f"the edge {_arrow(edge)} is not in the precedence graph: no conflict (different "
        "transactions, same item at the same site, at least one write, neither aborted) "
        "orders them that way"
    )


def _compare(history: History, text: str, got: frozenset[Edge], expected: frozenset[Edge],
             site: str | None = None) -> None:
    where = f"{text}: at site {site}, " if site is not None else f"{text}: "
    missing = _sorted(expected - got)
    if missing:
        raise AssertionError(where + _missing(history, missing[0], site))
    extra = _sorted(got - expected)
    if extra:
        raise AssertionError(where + _extra(history, extra[0], site))


# --- the judges -----------------------------------------------------------------------------


def _cases(cases: Iterable[Case] | None) -> list[tuple[Case, History]]:
    chosen = visible_cases() if cases is None else tuple(cases)
    return [(case, parse_history(case.history)) for case in chosen]


def judge_sites(site_edges: Analyse, cases: Iterable[Case] | None = None) -> None:
    """Each site's own precedence graph: takes ``site_edges`` or ``analyse``."""
    for case, history in _cases(cases):
        got = _site_map(_call(site_edges, history), case.history)
        expected = {site: edges for site, edges in case.sites.items() if edges}
        for site in sorted(set(got) | set(expected)):
            _compare(history, case.history, got.get(site, frozenset()),
                     expected.get(site, frozenset()), site)


def judge_edges(analyse: Analyse, cases: Iterable[Case] | None = None) -> None:
    """The global precedence graph's edges, exactly."""
    for case, history in _cases(cases):
        got = _edges(_field(_call(analyse, history), "edges"), case.history)
        _compare(history, case.history, got, case.edges)


def _respects(order: Sequence[str], nodes: Sequence[str], edges: Iterable[Edge]) -> bool:
    if sorted(order) != sorted(nodes):
        return False
    position = {node: index for index, node in enumerate(order)}
    return all(position[a] < position[b] for a, b in edges)


def judge_verdict(analyse: Analyse, cases: Iterable[Case] | None = None) -> None:
    """Serializable or not, and a valid equivalent serial order when it is."""
    for case, history in _cases(cases):
        text = case.history
        verdict = _call(analyse, history)
        serializable = _field(verdict, "serializable")
        assert isinstance(serializable, bool), (
            f"{text}: serializable must be True or False, not {serializable!r}"
        )
        assert serializable == case.serializable, (
            f"{text}: you said serializable={serializable}, but its precedence graph "
            + ("has no cycle" if case.serializable else "has a cycle")
        )
        order = _field(verdict, "order")
        if not case.serializable:
            assert order is None, f"{text}: not serializable, so order must be None"
            continue
        nodes = committed(history)
        valid = (
            order is not None
            and not isinstance(order, str)
            and _respects([str(t) for t in order], nodes, case.edges)
        )
        assert valid, (
            f"{text}: the order {order!r} is not an equivalent serial order; it must list "
            f"every committed transaction ({', '.join(nodes) or 'none here'}) once and put "
            "Ti before Tj for every edge Ti → Tj"
        )


def judge_anomaly(analyse: Analyse, cases: Iterable[Case] | None = None) -> None:
    """The anomaly's name, by the rules in the notebook (compared through its digest)."""
    for case, history in _cases(cases):
        text = case.history
        got = _field(_call(analyse, history), "anomaly")
        assert got is None or got in ANOMALIES, (
            f"{text}: anomaly must be None or one of {', '.join(ANOMALIES)}, not {got!r}"
        )
        if matches_digest(got, case.anomaly_digest, anomaly_salt(text)):
            continue
        if got is None:
            raise AssertionError(f"{text}: this history shows an anomaly; name it by the rules")
        if matches_digest(None, case.anomaly_digest, anomaly_salt(text)):
            raise AssertionError(
                f"{text}: you named {got!r}, but by the rules this history shows no anomaly "
                "(rule 2: no dirty read and serializable)"
            )
        raise AssertionError(
            f"{text}: the anomaly is not {got!r}; try the rules in order, the first that "
            "applies names it"
        )


EXERCISE = Exercise(
    EXERCISE_ID,
    (
        ("sites", judge_sites),
        ("edges", judge_edges),
        ("verdict", judge_verdict),
        ("anomaly", judge_anomaly),
    ),
)
