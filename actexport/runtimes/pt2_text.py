"""The strings in a .pt2 archive that torch.export.load turns into code, checked before it does.

torch.export.load evaluates each symbolic size (`expr_str`, e.g. "Symbol('s31', positive=True,
integer=True)") with sympy.sympify, which runs Python, and resolves each node's `target` by walking
attributes from the `torch`, `operator` or `math` module (so "torch.os.system" is a target). A crafted
archive therefore runs code on load, or when its graph runs. This module accepts only what
torch.export.save writes: sympy's printed form of arithmetic on shape symbols, and operator overloads.
"""

from __future__ import annotations

import json
import re

from actexport.files import error_text

# sympy classes and torch.utils._sympy.functions that a printed shape expression may call.
FUNCTIONS = frozenset({
    "Symbol", "Integer", "Rational", "Float", "Add", "Mul", "Pow", "Mod", "Max", "Min", "Abs", "floor", "ceiling",
    "Eq", "Ne", "Lt", "Le", "Gt", "Ge", "Equality", "Unequality", "StrictLessThan", "LessThan",
    "StrictGreaterThan", "GreaterThan", "And", "Or", "Not", "Piecewise", "ExprCondPair", "BooleanTrue",
    "BooleanFalse", "Infinity", "NegativeInfinity", "IntInfinity", "NegativeIntInfinity", "Zero", "One",
    "NegativeOne", "Half", "NaN",
    "FloorDiv", "ModularIndexing", "Where", "PythonMod", "CleanDiv", "CeilToInt", "FloorToInt", "CeilDiv",
    "LShift", "RShift", "PowByNatural", "FloatPow", "FloatTrueDiv", "IntTrueDiv",
    "IsNonOverlappingAndDenseIndicator", "TruncToFloat", "TruncToInt", "RoundToInt", "RoundDecimal", "ToFloat",
    "Identity",
})
# Calls whose second argument is an exponent or a shift: a literal one is kept small, because sympy
# evaluates Pow(Integer(10), Integer(10**18)) while parsing (a hang, not an answer).
_EXPONENT_CALLS = frozenset({"Pow", "PowByNatural", "FloatPow", "LShift", "RShift"})
_MAX_EXPONENT = 64
_MAX_PRECISION = 128
_MAX_POWERS = 2  # NOTE: nested powers grow as 64**k digits: (((10**64)**64)**64)**64 already hangs
KEYWORDS = frozenset({"positive", "negative", "nonnegative", "nonpositive", "integer", "real", "finite",
                      "commutative", "zero", "nonzero", "precision", "evaluate"})
CONSTANTS = frozenset({"oo", "zoo", "nan", "true", "false", "True", "False", "int_oo"})
_SYMBOL = re.compile(r"[a-z_]{1,8}\d{1,9}\Z")  # torch's shape symbols: s0, u3, ps1, zuf0...
_TOKEN = re.compile(r"""\s*(?:(?P<num>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"""
                    r"""|(?P<str>'[A-Za-z0-9_.+\-]{0,64}')|(?P<op>\*\*|//|<=|>=|==|!=|[-+*/%<>&|~(),=]))""")
MAX_CHARS = 4096
MAX_DIGITS = 20
MAX_DEPTH = 64

# Targets outside torch.ops: the pure functions torch.export writes for arithmetic on sizes.
OPERATOR_TARGETS = frozenset({f"_operator.{n}" for n in (
    "getitem", "add", "sub", "mul", "floordiv", "truediv", "mod", "neg", "pos", "pow", "eq", "ne", "lt", "le",
    "gt", "ge", "and_", "or_", "xor", "not_", "abs", "invert", "lshift", "rshift")} | {
    f"math.{n}" for n in ("ceil", "floor", "trunc", "sqrt")} | {
    f"torch.{n}" for n in ("sym_max", "sym_min", "sym_not", "sym_float", "sym_int", "sym_ite", "sym_sum",
                           "sym_sqrt", "_sym_sqrt")})
# Operators that reach outside the tensors they are given: a graph from elsewhere must not read files.
FORBIDDEN_OPS = frozenset({"aten.from_file", "aten._print", "aten.save"})
_OP_TARGET = re.compile(r"torch\.ops\.[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?\Z")


class Refused(ValueError):
    """A string torch would evaluate is not one torch.export.save writes."""


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos, end = 0, len(text.rstrip())
    while pos < end:
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise Refused(f"unexpected character {text[pos:].lstrip()[:1]!r}")
        kind = m.lastgroup
        assert kind is not None  # every alternative of _TOKEN is a named group
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


class _Parser:
    """Recursive descent over the tokens; builds nothing, only refuses what is not arithmetic."""

    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.t, self.i, self.powers = tokens, 0, 0

    def power(self) -> None:
        self.powers += 1
        if self.powers > _MAX_POWERS:
            raise Refused(f"more than {_MAX_POWERS} powers or shifts")

    def peek(self) -> tuple[str, str] | None:
        return self.t[self.i] if self.i < len(self.t) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (value is not None and tok[1] != value):
            raise Refused(f"expected {value or 'more'}, found {tok[1] if tok else 'the end'!r}")
        self.i += 1
        return tok

    def expr(self, depth: int) -> int | None:
        """An operand, then (operator operand)*; returns the literal value when it is one integer."""
        if depth > MAX_DEPTH:
            raise Refused(f"nested deeper than {MAX_DEPTH}")
        value, last = self.operand(depth), None
        while (tok := self.peek()) is not None and tok[0] == "op" and tok[1] not in "(),=":
            self.take()
            right = self.operand(depth)
            if tok[1] == "**":
                if last == "**":  # NOTE: a**b**c is a**(b**c): the exponent is itself a power
                    raise Refused("a power of a power")
                self.power()
            last = tok[1]
            if tok[1] == "**":
                if right is None or abs(right) > _MAX_EXPONENT:
                    raise Refused(f"an exponent must be an integer literal of at most {_MAX_EXPONENT}")
            value = None
        return value

    def operand(self, depth: int) -> int | None:
        tok = self.take()
        kind, text = tok
        if kind == "op" and text in "+-~":
            value = self.operand(depth + 1)
            return -value if value is not None and text == "-" else None
        if kind == "op" and text == "(":
            value = self.expr(depth + 1)
            self.take(")")
            return value
        if kind == "num":
            if len(text) > MAX_DIGITS:
                raise Refused(f"a number longer than {MAX_DIGITS} digits")
            return int(text) if text.isdigit() else None
        if kind == "name":
            nxt = self.peek()
            if nxt == ("op", "("):
                return self.call(text, depth)
            if text in CONSTANTS or _SYMBOL.match(text):
                return None
            raise Refused(f"unknown name {text!r}")
        raise Refused(f"unexpected {text!r}")

    def call(self, name: str, depth: int) -> int | None:
        if name not in FUNCTIONS:
            raise Refused(f"{name!r} is not a sympy function torch.export writes")
        self.take("(")
        args: list[int | None] = []
        while self.peek() != ("op", ")"):
            tok = self.peek()
            if tok is None:
                raise Refused(f"{name}( is never closed")
            kind, text = tok
            keyword = None
            if kind == "name" and self.i + 1 < len(self.t) and self.t[self.i + 1] == ("op", "="):
                if text not in KEYWORDS:
                    raise Refused(f"keyword {text!r} is not one sympy's printer writes")
                keyword = text
                self.take(), self.take("=")
            if (nxt := self.peek()) is not None and nxt[0] == "str":
                self.take()
                value = None
            else:
                value = self.expr(depth + 1)
            if keyword == "precision" and (value is None or value > _MAX_PRECISION):
                raise Refused(f"a precision above {_MAX_PRECISION} bits")  # NOTE: mpmath would compute with it
            if keyword is None:
                args.append(value)
            if self.peek() != ("op", ")"):
                self.take(",")
        self.take(")")
        if name in _EXPONENT_CALLS:
            self.power()
            # NOTE: a literal, not an expression: Pow(Integer(10), Mul(Integer(10), Integer(10**19))) is a
            # small-looking exponent that sympy multiplies out, then raises 10 to.
            if len(args) > 1 and (args[1] is None or abs(args[1]) > _MAX_EXPONENT):
                raise Refused(f"{name} needs an integer literal exponent of at most {_MAX_EXPONENT}")
        return args[0] if name == "Integer" and len(args) == 1 else None


def check_expr(text: object) -> None:
    """Raises Refused unless `text` is a printed sympy expression over shape symbols."""
    if not isinstance(text, str):
        raise Refused(f"a symbolic size must be a string, not {type(text).__name__}")
    if len(text) > MAX_CHARS:
        raise Refused(f"a symbolic size of {len(text)} characters (at most {MAX_CHARS})")
    parser = _Parser(_tokens(text))
    parser.expr(0)
    if (tok := parser.peek()) is not None:
        raise Refused(f"unexpected {tok[1]!r} after the expression")


def check_target(text: object) -> None:
    """Raises Refused unless `text` names an operator overload (torch.ops.<ns>.<op>.<overload>) or
    one of the pure size functions torch.export writes."""
    if not isinstance(text, str):
        raise Refused(f"a node target must be a string, not {type(text).__name__}")
    if text in OPERATOR_TARGETS:
        return
    if not _OP_TARGET.match(text):
        raise Refused(f"node target {text[:80]!r} is not an operator (torch.ops.<namespace>.<op>.<overload>)")
    import torch
    _, _, namespace, *rest = text.split(".")
    if f"{namespace}.{rest[0]}" in FORBIDDEN_OPS:
        raise Refused(f"node target {text!r} reaches outside the graph's tensors (files): refused")
    try:
        target = getattr(torch.ops, namespace)
        for part in rest:
            target = getattr(target, part)
    except (AttributeError, RuntimeError):
        raise Refused(f"node target {text!r} is not an operator this torch has (a plugin missing?)") from None
    if not isinstance(target, (torch._ops.OpOverload, torch._ops.HigherOrderOperator, torch._ops.OpOverloadPacket)):
        raise Refused(f"node target {text!r} is not an operator")


def check_program_json(raw: bytes, name: str) -> None:
    """Checks every symbolic size and node target in one serialized program (the archive's
    models/*.json); raises Refused naming the first that torch must not evaluate."""
    try:
        program = json.loads(raw)
    except (ValueError, RecursionError) as e:  # NOTE: ValueError covers ints past Python's digit limit
        raise Refused(f"{name} is not valid JSON ({error_text(e, 100)})") from None
    stack = [program]
    while stack:  # NOTE: a loop, not recursion: a deeply nested document must not overflow the stack
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "expr_str":
                    try:
                        check_expr(value)
                    except Refused as e:
                        raise Refused(f"{name}: symbolic size {str(value)[:80]!r}: {e}") from None
                elif key == "target" and "inputs" in node:
                    check_target(value)
                else:
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)
