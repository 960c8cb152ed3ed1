"""Reference solutions, one module per exercise (``p1_transfer`` for ``p1.transfer``).

Students never receive this package. A reference module may define ``visible_cases()``,
returning the JSON-able expected results of the exercise's visible cases; the build
writes them into the student package (``dtcourse/runtime/checks/data``).
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

__all__ = ["module_for", "reference_modules"]


def module_for(exercise_id: str) -> ModuleType:
    """The reference module of an exercise: dots and hyphens become underscores."""
    name = exercise_id.replace(".", "_").replace("-", "_")
    return importlib.import_module(f"{__name__}.{name}")


def reference_modules() -> dict[str, ModuleType]:
    """Every reference module, by module name."""
    return {
        info.name: importlib.import_module(f"{__name__}.{info.name}")
        for info in pkgutil.iter_modules(__path__)
        if not info.name.startswith("_")
    }
