"""REDCap's logic language: calculated fields, ``filterLogic``, branching.

One evaluator serves calc fields (recomputed on import, as ``saveData`` does
with ``performAutoCalc``) and ``filterLogic`` on exports. Expressions are
compiled once into closures and evaluated per row against a ``Context``.

Blank semantics follow REDCap's calc engine: arithmetic with a blank operand
is blank (a calc shows nothing until its inputs are filled), ``sum``/``mean``/
``min``/``max`` skip blanks, ``=``/``<>`` compare blanks as empty strings, and
an ordering comparison (``<``, ``>``…) with a blank side is false.

Not covered (an expression using them compiles, the unknown part evaluates
blank): cross-record aggregates, ``[field:label]``-style piping beyond
``:value``/``:raw``/``:checked``, smart variables other than
``[record-name]``, ``[event-name]``, ``[event-label]``, ``[arm-number]``,
``[current-instance]`` and the ``first/last/previous/next-instance``
qualifiers, and the statistics/date helpers not listed in ``FUNCTIONS``.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, ROUND_UP, Decimal, InvalidOperation

BLANK = ""


class LogicError(ValueError):
    """The expression is not valid REDCap logic."""


class Context:
    """What an expression can see: one row of one record.

    Subclasses answer ``value`` from real data; ``instance`` qualifiers are
    passed as int or keyword ("first", "last", "previous", "next").
    """

    record: str = ""
    event: str = ""
    event_label: str = ""
    arm_num: int = 1
    instance: int = 1
    missing_codes: frozenset[str] = frozenset()

    def value(self, field: str, event: str | None = None, instance=None) -> str:  # pragma: no cover
        raise NotImplementedError

    def checkbox(self, field: str, code: str, event: str | None = None, instance=None) -> str:  # pragma: no cover
        raise NotImplementedError


# -- tokenizer -----------------------------------------------------------------
_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<ref>(?:\[[^\[\]]*\])+)
  | (?P<num>\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+)
  | (?P<str>"[^"]*"|'[^']*')
  | (?P<op><=|>=|<>|!=|==|&&|\|\||[-+*/^=<>(),!])
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    """,
    re.X,
)


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise LogicError(f"unexpected character {text[pos]!r} at position {pos + 1}")
        pos = m.end()
        if m.lastgroup != "ws":
            out.append((m.lastgroup, m.group()))
    out.append(("end", ""))
    return out


# -- values -------------------------------------------------------------------
_NUMERIC = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")


def is_number(v) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, (int, float)):
        return math.isfinite(v)
    return bool(_NUMERIC.match(v))


def to_number(v) -> float | None:
    """A value as a number, or None when blank or not numeric."""
    if isinstance(v, bool):
        return 1.0 if v else 0.0
    if isinstance(v, (int, float)):
        return float(v) if math.isfinite(v) else None
    if _NUMERIC.match(v):
        return float(v)
    return None


def truth(v) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return v != 0 and math.isfinite(v)
    n = to_number(v)
    if n is not None:
        return n != 0
    return v.strip() != ""


def to_text(v) -> str:
    """A result as REDCap stores it (PHP float-to-string, 14 significant digits)."""
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, (int, float)):
        if not math.isfinite(v):
            return BLANK
        if float(v).is_integer() and abs(v) < 1e15:
            return str(int(v))
        text = format(v, ".14g")
        if "e" in text:
            mantissa, exp = text.split("e")
            return f"{mantissa}E{int(exp):+d}"
        return text
    return v


# -- dates --------------------------------------------------------------------
_DATE_FORMATS = {
    "ymd": ("%Y-%m-%d",),
    "mdy": ("%m-%d-%Y", "%m/%d/%Y"),
    "dmy": ("%d-%m-%Y", "%d/%m/%Y"),
}


def _parse_date(v, fmt: str = "ymd") -> datetime | None:
    if isinstance(v, datetime):
        return v
    s = str(v).strip()
    if not s:
        return None
    low = s.lower()
    if low == "today":
        return datetime.combine(date.today(), datetime.min.time())
    if low == "now":
        return datetime.now().replace(microsecond=0)
    s = s.replace("T", " ")
    day_part, _, time_part = s.partition(" ")
    candidates = _DATE_FORMATS.get(fmt, ()) + _DATE_FORMATS["ymd"]
    for f in candidates:
        try:
            d = datetime.strptime(day_part, f)
            break
        except ValueError:
            continue
    else:
        # A bare time ("HH:MM") counts from an arbitrary fixed day, as REDCap does.
        if re.match(r"^\d{1,2}:\d{2}(:\d{2})?$", day_part):
            d, time_part = datetime(2000, 1, 1), day_part
        else:
            return None
    if time_part:
        parts = time_part.split(":")
        try:
            d = d + timedelta(hours=int(parts[0]), minutes=int(parts[1]) if len(parts) > 1 else 0,
                              seconds=int(float(parts[2])) if len(parts) > 2 else 0)
        except (ValueError, IndexError):
            return None
    return d


_UNIT_SECONDS = {"y": 86400 * 365.2425, "M": 86400 * 30.44, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


def _datediff(args):
    if len(args) < 3:
        raise LogicError("datediff() needs at least three arguments")
    d1, d2, unit = args[0], args[1], str(args[2])
    fmt, signed = "ymd", False
    for extra in args[3:]:
        text = str(extra).strip().lower()
        if text in _DATE_FORMATS:
            fmt = text
        else:
            signed = truth(extra) if not isinstance(extra, str) else text in ("true", "1")
    a, b = _parse_date(d1, fmt), _parse_date(d2, fmt)
    if a is None or b is None or unit not in _UNIT_SECONDS:
        return BLANK
    diff = (b - a).total_seconds() / _UNIT_SECONDS[unit]
    return diff if signed else abs(diff)


# -- functions ------------------------------------------------------------------
def _numbers(args) -> list[float]:
    return [n for n in (to_number(a) for a in args) if n is not None]


def _rounder(mode):
    def fn(args):
        if not args:
            raise LogicError("round() needs a number")
        n = to_number(args[0])
        if n is None:
            return BLANK
        places = int(to_number(args[1]) or 0) if len(args) > 1 else 0
        try:
            d = Decimal(repr(n)).quantize(Decimal(1).scaleb(-places), rounding=mode)
        except InvalidOperation:
            return BLANK
        # A number, as PHP's round() returns: round(38.04, 1) is 38, not "38.0".
        return float(d)
    return fn


def _agg(fn):
    def wrapped(args):
        nums = _numbers(args)
        return fn(nums) if nums else BLANK
    return wrapped


def _unary(fn):
    def wrapped(args):
        n = to_number(args[0]) if args else None
        if n is None:
            return BLANK
        try:
            return fn(n)
        except (ValueError, OverflowError):
            return BLANK
    return wrapped


def _text_fn(fn):
    def wrapped(args):
        return fn(*[to_text(a) if not isinstance(a, str) else a for a in args])
    return wrapped


def _if(args):  # evaluated lazily, see _Parser._call
    raise AssertionError


def _left(s, n="1"):
    k = int(to_number(n) or 0)
    return s[:k] if k > 0 else ""


def _right(s, n="1"):
    k = int(to_number(n) or 0)
    return s[-k:] if k > 0 else ""


def _mid(s, start="1", n=None):
    i = max(int(to_number(start) or 1) - 1, 0)
    return s[i:] if n is None else s[i:i + int(to_number(n) or 0)]


def _date_part(index):
    def fn(args):
        d = _parse_date(args[0]) if args else None
        return BLANK if d is None else (d.year, d.month, d.day)[index]
    return fn


def _log(args):
    n = to_number(args[0]) if args else None
    if n is None or n <= 0:
        return BLANK
    base = to_number(args[1]) if len(args) > 1 else None
    return math.log(n) if base is None else math.log(n, base)


FUNCTIONS: dict[str, Callable] = {
    "round": _rounder(ROUND_HALF_UP),  # half away from zero, as PHP
    "roundup": _rounder(ROUND_UP),  # away from zero
    "rounddown": _rounder(ROUND_DOWN),  # toward zero
    "sum": _agg(sum),
    "mean": _agg(statistics.fmean),
    "median": _agg(statistics.median),
    "min": _agg(min),
    "max": _agg(max),
    "stdev": _agg(lambda ns: statistics.stdev(ns) if len(ns) > 1 else 0.0),
    "abs": _unary(abs),
    "sqrt": _unary(math.sqrt),
    "exponential": _unary(math.exp),
    "log": _log,
    "datediff": _datediff,
    "isnumber": lambda a: bool(a) and is_number(a[0]),
    "isinteger": lambda a: bool(a) and is_number(a[0]) and float(to_number(a[0])).is_integer(),
    "contains": _text_fn(lambda h="", n="": n.lower() in h.lower()),
    "not_contain": _text_fn(lambda h="", n="": n.lower() not in h.lower()),
    "starts_with": _text_fn(lambda h="", n="": h.lower().startswith(n.lower())),
    "ends_with": _text_fn(lambda h="", n="": h.lower().endswith(n.lower())),
    "concat": _text_fn(lambda *a: "".join(a)),
    "concat_ws": _text_fn(lambda sep="", *a: sep.join(x for x in a if x != "")),
    "left": _text_fn(_left),
    "right": _text_fn(_right),
    "mid": _text_fn(_mid),
    "length": _text_fn(lambda s="": len(s)),
    "lower": _text_fn(lambda s="": s.lower()),
    "upper": _text_fn(lambda s="": s.upper()),
    "trim": _text_fn(lambda s="": s.strip()),
    "find": _text_fn(lambda n="", h="": h.lower().find(n.lower()) + 1),
    "replace_text": _text_fn(lambda h="", s="", r="": h.replace(s, r) if s else h),
    "year": _date_part(0),
    "month": _date_part(1),
    "day": _date_part(2),
}
_LAZY = {"if", "isblankormissingcode"}


# -- references ------------------------------------------------------------------
_INSTANCE_WORDS = {"first-instance": "first", "last-instance": "last", "previous-instance": "previous",
                   "next-instance": "next", "current-instance": None}
_SMART = {"record-name", "event-name", "event-label", "arm-number", "current-instance", "user-name",
          "project-id", "record-dag-name"}
_FIELD_PART = re.compile(r"^([a-z0-9_]+)(?:\(([^()]*)\))?(?::([a-z_-]+))?$", re.I)


def _ref(text: str, fields: set[str] | None, events: set[str] | None):
    parts = re.findall(r"\[([^\[\]]*)\]", text)
    parts = [p.strip() for p in parts]
    event = None
    instance = None
    if len(parts) >= 2 and (events is None or parts[0] in events or parts[0] in ("event-name",)) \
            and _FIELD_PART.match(parts[1]) and not parts[1].isdigit() and parts[1] not in _INSTANCE_WORDS:
        event, parts = parts[0], parts[1:]
    if len(parts) == 2:
        q = parts[1]
        if q.isdigit():
            instance = int(q)
        elif q in _INSTANCE_WORDS:
            instance = _INSTANCE_WORDS[q]
        else:
            raise LogicError(f"cannot read the reference {text}")
        parts = parts[:1]
    if len(parts) != 1:
        raise LogicError(f"cannot read the reference {text}")
    head = parts[0]
    if head in _SMART and event is None:
        return _smart(head)
    m = _FIELD_PART.match(head)
    if not m:
        raise LogicError(f"cannot read the reference {text}")
    name, code, modifier = m.group(1), m.group(2), (m.group(3) or "").lower()
    if fields is not None and name not in fields:
        raise LogicError(f"the field [{name}] does not exist in the project")
    ev = None if event in (None, "event-name") else event

    if code is not None:
        code = code.strip().strip("'\"")
        return lambda ctx: ctx.checkbox(name, code, ev, instance)
    if modifier in ("checked", "unchecked"):
        return lambda ctx: ctx.value(name, ev, instance)
    return lambda ctx: ctx.value(name, ev, instance)


def _smart(name: str):
    if name == "record-name":
        return lambda ctx: ctx.record
    if name == "event-name":
        return lambda ctx: ctx.event
    if name == "event-label":
        return lambda ctx: ctx.event_label
    if name == "arm-number":
        return lambda ctx: str(ctx.arm_num)
    if name == "current-instance":
        return lambda ctx: str(ctx.instance)
    return lambda ctx: BLANK


# -- parser (precedence climbing) --------------------------------------------------
def _compare(op: str, a, b) -> bool:
    na, nb = to_number(a), to_number(b)
    sa = a if isinstance(a, str) else to_text(a)
    sb = b if isinstance(b, str) else to_text(b)
    if op in ("=", "=="):
        return na == nb if na is not None and nb is not None else sa == sb
    if op in ("<>", "!="):
        return na != nb if na is not None and nb is not None else sa != sb
    if sa.strip() == "" or sb.strip() == "":
        return False
    if na is not None and nb is not None:
        x, y = na, nb
    else:
        x, y = sa, sb
    return {"<": x < y, ">": x > y, "<=": x <= y, ">=": x >= y}[op]


def _arith(op: str, a, b):
    x, y = to_number(a), to_number(b)
    if x is None or y is None:
        return BLANK
    try:
        if op == "+":
            return x + y
        if op == "-":
            return x - y
        if op == "*":
            return x * y
        if op == "/":
            return x / y if y != 0 else BLANK
        return x ** y
    except (OverflowError, ZeroDivisionError, ValueError):
        return BLANK


class _Parser:
    def __init__(self, text: str, fields, events):
        self.toks = _tokens(text)
        self.i = 0
        self.fields = fields
        self.events = events

    def peek(self):
        return self.toks[self.i]

    def take(self):
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def expect(self, value: str):
        kind, text = self.take()
        if text != value:
            raise LogicError(f"expected {value!r} but found {text or 'the end'!r}")

    def parse(self):
        node = self.or_()
        if self.peek()[0] != "end":
            raise LogicError(f"unexpected {self.peek()[1]!r}")
        return node

    def _word(self, *words):
        kind, text = self.peek()
        return (kind == "name" and text.lower() in words) or (kind == "op" and text in words)

    def or_(self):
        left = self.and_()
        while self._word("or", "||"):
            self.take()
            right = self.and_()
            left = (lambda l, r: lambda ctx: truth(l(ctx)) or truth(r(ctx)))(left, right)
        return left

    def and_(self):
        left = self.not_()
        while self._word("and", "&&"):
            self.take()
            right = self.not_()
            left = (lambda l, r: lambda ctx: truth(l(ctx)) and truth(r(ctx)))(left, right)
        return left

    def not_(self):
        if self._word("not", "!"):
            self.take()
            inner = self.not_()
            return lambda ctx: not truth(inner(ctx))
        return self.comparison()

    def comparison(self):
        left = self.additive()
        while self.peek()[0] == "op" and self.peek()[1] in ("=", "==", "<>", "!=", "<", ">", "<=", ">="):
            op = self.take()[1]
            right = self.additive()
            left = (lambda o, l, r: lambda ctx: _compare(o, l(ctx), r(ctx)))(op, left, right)
        return left

    def additive(self):
        left = self.term()
        while self.peek()[0] == "op" and self.peek()[1] in ("+", "-"):
            op = self.take()[1]
            right = self.term()
            left = (lambda o, l, r: lambda ctx: _arith(o, l(ctx), r(ctx)))(op, left, right)
        return left

    def term(self):
        left = self.unary()
        while self.peek()[0] == "op" and self.peek()[1] in ("*", "/"):
            op = self.take()[1]
            right = self.unary()
            left = (lambda o, l, r: lambda ctx: _arith(o, l(ctx), r(ctx)))(op, left, right)
        return left

    def unary(self):
        if self.peek() == ("op", "-"):
            self.take()
            inner = self.unary()
            return lambda ctx: _arith("-", 0, inner(ctx))
        if self.peek() == ("op", "+"):
            self.take()
            inner = self.unary()
            return lambda ctx: _arith("+", 0, inner(ctx))
        return self.power()

    def power(self):
        base = self.primary()
        if self.peek() == ("op", "^"):
            self.take()
            exp = self.unary()
            return lambda ctx: _arith("^", base(ctx), exp(ctx))
        return base

    def primary(self):
        kind, text = self.take()
        if kind == "num":
            value = float(text)
            return lambda ctx: value
        if kind == "str":
            value = text[1:-1]
            return lambda ctx: value
        if kind == "ref":
            return _ref(text, self.fields, self.events)
        if kind == "op" and text == "(":
            node = self.or_()
            self.expect(")")
            return node
        if kind == "name":
            low = text.lower()
            if self.peek() == ("op", "("):
                return self._call(low)
            if low == "true":
                return lambda ctx: True
            if low == "false":
                return lambda ctx: False
            if low in ("today", "now"):
                return lambda ctx: low
            raise LogicError(f"unknown word {text!r}")
        raise LogicError(f"unexpected {text or 'end of logic'!r}")

    def _call(self, name: str):
        self.expect("(")
        args = []
        if self.peek() != ("op", ")"):
            args.append(self.or_())
            while self.peek() == ("op", ","):
                self.take()
                args.append(self.or_())
        self.expect(")")
        if name == "if":
            if len(args) != 3:
                raise LogicError("if() needs three arguments")
            c, a, b = args
            return lambda ctx: a(ctx) if truth(c(ctx)) else b(ctx)
        if name == "isblankormissingcode":
            if len(args) != 1:
                raise LogicError("isblankormissingcode() needs one argument")
            arg = args[0]

            def blank_or_missing(ctx):
                v = arg(ctx)
                v = v if isinstance(v, str) else to_text(v)
                return v.strip() == "" or v in ctx.missing_codes
            return blank_or_missing
        fn = FUNCTIONS.get(name)
        if fn is None:
            raise LogicError(f"the function {name}() is not supported")
        return lambda ctx: fn([a(ctx) for a in args])


class Logic:
    """A compiled expression. ``fields``/``events`` (optional) validate references."""

    def __init__(self, text: str, *, fields: set[str] | Mapping | None = None,
                 events: set[str] | Mapping | None = None):
        self.text = text
        cleaned = re.sub(r"//[^\n]*|/\*.*?\*/", " ", text or "", flags=re.S)
        cleaned = cleaned.replace("&quot;", '"').replace("&#039;", "'").replace("&amp;", "&")
        cleaned = cleaned.replace("&lt;", "<").replace("&gt;", ">")
        if not cleaned.strip():
            self._fn = lambda ctx: True
            return
        self._fn = _Parser(cleaned, set(fields) if fields is not None else None,
                           set(events) if events is not None else None).parse()

    def evaluate(self, ctx: Context):
        return self._fn(ctx)

    def is_true(self, ctx: Context) -> bool:
        return truth(self._fn(ctx))

    def calc(self, ctx: Context) -> str:
        """The value a calc field stores (booleans become 1/0, blank stays blank)."""
        v = self._fn(ctx)
        if isinstance(v, bool):
            return "1" if v else "0"
        return to_text(v)
