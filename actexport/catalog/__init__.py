"""The registry: one row per activation configuration, the only place that names activations.

CATALOG is the rows of elementwise.py and then those of rowwise.py; the classes they are made of are
in model.py. `get`, `select` and `registered` read and rebind CATALOG here, so a row added for a
with-block is seen by every caller of `catalog.get`. EXCLUDED names the classes of torch.nn's
activations that are deliberately not rows, and activation_classes() lists them all, so that a test
finds a class that is neither.
"""

from __future__ import annotations

import contextlib
import inspect

from torch import nn

from actexport.catalog import elementwise, rowwise
from actexport.catalog.model import (
    DEFAULT_BUDGETS,
    DTYPES,
    Activation,
    Budget,
    Declared,
    Region,
    UsageError,
    XFail,
    parse_list,
)

__all__ = ["CATALOG", "DEFAULT_BUDGETS", "DTYPES", "EXCLUDED", "Activation", "Budget", "Declared", "Region",
           "UsageError", "XFail", "activation_classes", "get", "parse_list", "registered", "select"]

CATALOG: tuple[Activation, ...] = (*elementwise.ROWS, *rowwise.ROWS)

# Classes of torch.nn.modules.activation that are deliberately not in the catalog.
EXCLUDED: dict[str, str] = {
    "MultiheadAttention": "an attention layer with learned projections and several inputs, "
    "not an elementwise or normalising activation function",
}

_BY_ID = {a.id: a for a in CATALOG}


def get(activation_id: str) -> Activation:
    try:
        return _BY_ID[activation_id]
    except KeyError:
        raise UsageError(
            f"unknown activation {activation_id!r}; known: {', '.join(sorted(_BY_ID))}"
        ) from None


@contextlib.contextmanager
def registered(act: Activation):
    """Adds a row (a user's module) to the catalog for the duration of a with-block."""
    global CATALOG, _BY_ID
    if act.id in _BY_ID:
        raise UsageError(f"{act.id!r} is already a catalog id")
    saved = CATALOG, _BY_ID
    CATALOG, _BY_ID = (*CATALOG, act), {**_BY_ID, act.id: act}
    try:
        yield act
    finally:
        CATALOG, _BY_ID = saved


def select(ids: list[str] | tuple[str, ...] | None) -> tuple[Activation, ...]:
    """The activations named by `ids` (all of them when `ids` is empty or None), in catalog order."""
    if not ids:
        return CATALOG
    wanted = {get(i).id for i in ids}
    return tuple(a for a in CATALOG if a.id in wanted)


def activation_classes() -> dict[str, type]:
    """Every activation class that torch.nn.modules.activation defines."""
    from torch.nn.modules import activation as mod

    return {
        name: cls
        for name, cls in vars(mod).items()
        if inspect.isclass(cls) and issubclass(cls, nn.Module) and cls.__module__ == mod.__name__
    }
