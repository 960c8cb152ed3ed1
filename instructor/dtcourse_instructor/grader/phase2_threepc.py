"""p2.threepc: the termination rule of three-phase commit, judged in the protocol itself.

When the 3PC coordinator fails, the participants that are still up elect a new coordinator,
which collects their states and applies the termination rule (Skeen 1981; Bernstein,
Hadzilacos and Goodman, 7.5). The student writes that rule as a function of the reported
states, in the words of the notebook: ``working``, ``prepared`` (uncertain),
``precommitted``, ``committed``, ``aborted``.

It is judged three ways. First against the reference rule on every set of states the
survivors of a crash-stop run can report, with as many participants as the hidden test
asks. Then inside 3PC: the rule is plugged into its participants and the model checker
explores every run with crashes under a perfect failure detector, where AC1-AC4 and
non-blocking must hold. Last, the student uses the checker to produce the partition
counterexample and reads off who decided what. The last two need no answer, so they are
the visible checks run with the hidden settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dtcourse.runtime.checks import Exercise
from dtcourse.runtime.checks.p2_threepc import ask, crash_stop, partition
from dtcourse_instructor.reference.p2_threepc import survivor_reports, terminate


def threepc_rule(obj: Any, *, participants: int = 3) -> None:
    """The rule on every set of states the survivors can report, as the textbook says."""
    rule = obj.get("rule") if isinstance(obj, Mapping) else obj
    assert callable(rule), "pass {'rule': terminate, 'partition': partition_answer}"
    for states in survivor_reports(participants):
        want = terminate(states)
        got = ask(rule, states)
        assert got == want, (
            f"survivors in states {states}: the termination rule decides {want}, not {got}"
        )


EXERCISE = Exercise(
    "p2.threepc",
    (("rule", threepc_rule), ("crash_stop", crash_stop), ("partition", partition)),
)
