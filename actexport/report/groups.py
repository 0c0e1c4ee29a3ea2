"""The cells that changed nothing (xfail, skip, unavailable), one line per kind: the cause's short
name, where it applies, how many cells, and the worst figure. A CI log reads these every run, so
they are one line each; `verify --explain` prints every cell in full instead."""

from __future__ import annotations

import re

# Statuses a group line may stand for; fail, error and xpass are always printed in full.
GROUPED = ("xfail", "skip", "unavailable")

# NOTE: judge.py and verify/cells.py write an xfail reason as "<declaration> [<detail>]", and the
# detail starts with one of these; a declaration's own text may hold brackets (regions such as
# "[-88, -1.8]"), so the last " [" would not do.
_DETAIL = re.compile(r" \[(?:vs exact \(|no artifact: )")
# A clause ends at "; ", ": " or " | " (Declared joins its items so), or where a worded parenthesis
# starts (" (value 0)", " (float32: ..."); " (1 + x)" is arithmetic and does not end one.
_CLAUSE_END = re.compile(r"; |: | \| | \((?=[A-Za-z])")


def declaration(reason: str) -> str:
    """The declaration's text in an xfail reason (the whole reason when it has no detail)."""
    m = _DETAIL.search(reason)
    return reason[:m.start()] if m else reason


def short_name(text: str) -> str:
    """A cause's first clause: what it is, without the measurements that follow."""
    m = _CLAUSE_END.search(text)
    return (text[:m.start()] if m else text).strip().rstrip(",.") or text


def _kind(cell) -> str:
    return short_name(declaration(cell.reason) if cell.status == "xfail" else cell.reason)


def _common(a: list[str], b: list[str]) -> tuple[int, int]:
    """The words two names share at their start and at their end (not overlapping)."""
    p = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    s = next((i for i, (x, y) in enumerate(zip(reversed(a), reversed(b))) if x != y), min(len(a), len(b)))
    return p, min(s, min(len(a), len(b)) - p)


def _merge(names: list[str]) -> dict[str, str]:
    """Each short name -> the label of its group. Names that differ only in a run of words in the
    middle come from one template with a parameter (onnxruntime's Elu / Selu / Celu computes exp(x) - 1;
    onnxruntime has no kernel for <ops> on CPUExecutionProvider): those are one kind, labelled with
    the parameters' items listed once each."""
    clusters: list[list] = []  # [prefix words, suffix words, member names]
    for name in names:
        words = name.split(" ")
        for cluster in clusters:
            head, tail, members = cluster
            if len(members) == 1:  # a lone name is its own prefix
                head = members[0].split(" ")
                p, s = _common(head, words)
                head, tail = head[:p], head[len(head) - s:]
            if (words[:len(head)] == head and words[len(words) - len(tail):] == tail
                    and len(words) > len(head) + len(tail) >= max(4, len(words) // 2)):
                cluster[0], cluster[1] = head, tail
                members.append(name)
                break
        else:
            clusters.append([[], [], [name]])
    out = {}
    for head, tail, members in clusters:
        label = members[0]
        if len(members) > 1:
            items = [item.rstrip(",") for m in members
                     for item in " ".join(m.split(" ")[len(head):len(m.split(" ")) - len(tail)]).split(", ")]
            label = " ".join([*head, ", ".join(dict.fromkeys(items)), *tail])
        out.update({m: label for m in members})
    return out


def where(cells: list, several: set[str], dtypes: bool) -> str:
    """The cells' coordinates, compactly: activations that share their runtimes listed together
    ("softplus, softplus_b2_t10 on ort:cpu, onnx.reference"); the format and opset only for the
    runtimes in `several` (they ran more than one), the dtypes only when `dtypes`."""

    def column(c) -> str:
        if c.runtime not in several:
            return c.runtime
        return f"{c.format}@{c.opset} {c.runtime}" if c.opset is not None else f"{c.format} {c.runtime}"

    by_act: dict[str, dict[str, list[str]]] = {}
    for c in cells:
        by_act.setdefault(c.activation, {}).setdefault(column(c), []).append(c.dtype)
    shared: dict[str, list[str]] = {}  # the columns (with dtypes) -> the activations there
    for act, columns in by_act.items():
        text = ", ".join(f"{col} {'/'.join(dict.fromkeys(ds))}" if dtypes else col for col, ds in columns.items())
        shared.setdefault(text, []).append(act)
    return "; ".join(f"{', '.join(acts)} on {text}" for text, acts in shared.items())


def group_lines(report, figure) -> list[str]:
    """One line per kind of xfail, then of skip and unavailable; `figure(cells)` is the matrix's
    worst figure ("-" where nothing ran)."""
    made: dict[str, set] = {}
    for c in report.cells:
        made.setdefault(c.runtime, set()).add((c.format, c.opset))
    several = {rt for rt, fmts in made.items() if len(fmts) > 1}
    dtypes = len({c.dtype for c in report.cells}) > 1
    lines = []
    for status in GROUPED:
        cells = [c for c in report.cells if c.status == status]
        kinds = [_kind(c) for c in cells]
        label = _merge(list(dict.fromkeys(kinds)))
        groups: dict[str, list] = {}
        for c, k in zip(cells, kinds):
            groups.setdefault(label[k], []).append(c)
        for name, members in groups.items():
            n = len(members)
            line = f"{status}: {name}: {where(members, several, dtypes)} ({n} cell{'s' if n > 1 else ''})"
            worst = figure(members) if status == "xfail" else "-"
            lines.append(line + (f"; max ULP {worst}" if worst != "-" else ""))
    return lines
