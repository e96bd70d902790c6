# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Mapping filters: a safe subset of the OData v4 ``$filter`` language.

A mapping restricts the records it syncs with ``table_filter`` and
``integration_table_filter``, e.g. ``blocked eq 0 and (country eq 'DK' or
startswith(name, 'Contoso'))``. Filters are data, never SQL text: the maintained
``odata_query`` grammar parses them, a whitelist validates the tree, and the same tree
compiles three ways so every side of a sync selects the same records:

* ``to_sqlalchemy`` - a SQLAlchemy Core condition for database endpoints; every value
  of the filter is a bound parameter;
* ``to_odata`` - canonical ``$filter`` text for web endpoints;
* ``matches`` - evaluation in Python, for change feeds that take no ``$filter``.

Semantics are OData's, made two-valued so that ``not`` means "the other records":
``x eq null`` / ``x ne null`` test for null; ``eq`` treats null as equal only to null,
so ``x ne 'DK'`` is true for a null ``x`` (it is ``not (x eq 'DK')``); ordering
comparisons and string functions with a null operand are false. The SQL condition
never evaluates to SQL NULL, so ``sa.not_()`` of it selects exactly the other rows.
"""

from __future__ import annotations

import datetime
import decimal
import difflib
import enum
import math
import operator
import re
import threading
import traceback
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, cast

if TYPE_CHECKING:  # annotations only; SQLAlchemy is imported on first use
    import sqlalchemy as sa

try:
    from dateutil.parser import isoparse
    from odata_query import ast as oast
    from odata_query import exceptions as oexc
    from odata_query.grammar import ODataLexer, ODataParser
    from sly.lex import Token

    HAS_ODATA_QUERY = True
    ODATA_QUERY_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - exercised by a subprocess test
    HAS_ODATA_QUERY = False
    ODATA_QUERY_IMPORT_ERROR = traceback.format_exc()

__all__ = ["HAS_ODATA_QUERY", "ODATA_QUERY_IMPORT_ERROR", "Filter", "FilterError", "combine", "parse_filter", "value_in"]

# Functions that are conditions (take a string and a string literal) and functions that
# transform a string value. Nothing else is allowed: no arithmetic, navigation or lambdas.
PREDICATE_FUNCTIONS = ("contains", "endswith", "startswith")
VALUE_FUNCTIONS = ("tolower", "toupper", "trim")
ALLOWED = (
    "allowed: comparisons eq, ne, gt, ge, lt, le and in (...), combined with and, or, not and parentheses; "
    "functions contains, endswith, startswith (field, 'text') and tolower, toupper, trim (field); "
    "values null, true, false, numbers, 'strings', dates, datetimes and GUIDs"
)

# Filters are configuration, not documents; the limits keep parsing and the recursive
# compilers far from Python's recursion limit whatever a user writes.
MAX_FILTER_LENGTH = 16384
MAX_NESTING = 60

_INT64 = 2**63
_IDENTIFIER_RE = re.compile(r"[_a-zA-Z](?:\.?\w){0,127}")
_LITERAL_TOKENS = frozenset(("NULL", "INTEGER", "DECIMAL", "STRING", "GEOGRAPHY", "BOOLEAN", "GUID", "DATE", "TIME", "DATETIME", "DURATION"))
# Keywords the odata_query lexer matches even as the start of a longer name ("allow_credit").
_KEYWORD_PREFIX_TOKENS = frozenset(("ANY", "ALL", "NULL", "BOOLEAN"))
_SYNTAX_HINTS = {
    '"': "strings use single quotes, a quote inside is doubled: 'O''Brien'",
    "=": "compare with eq, ne, gt, ge, lt, le",
    "!": "compare with eq, ne, gt, ge, lt, le; negate with not",
    "<": "compare with eq, ne, gt, ge, lt, le",
    ">": "compare with eq, ne, gt, ge, lt, le",
    "&": "combine conditions with and",
    "|": "combine conditions with or",
    ";": "a filter is one expression",
}


class FilterError(ValueError):
    """A filter is invalid; the message names the mapping/side, the offending part and what is allowed."""


@dataclass(frozen=True)
class Filter:
    """A validated filter; immutable so one parse can serve every run and thread."""

    text: str
    tree: Any = field(hash=False)
    fields: frozenset[str] = frozenset()
    context: str = field(default="filter", compare=False)

    def to_sqlalchemy(self, columns: Mapping[str, sa.ColumnElement]) -> sa.ColumnElement[bool]:
        """SQLAlchemy Core condition over ``columns`` (field name -> column); never SQL NULL."""
        missing = sorted(name for name in self.fields if not _has_column(columns, name))
        if missing:
            raise FilterError(
                "%s: field %s has no column in this table; columns: %s"
                % (self.context, ", ".join("'%s'" % m for m in missing), ", ".join(sorted(_column_names(columns))) or "(none)")
            )
        return _SqlCompiler(columns, self.context).predicate(self.tree)

    def to_odata(self, expand_in: bool = False) -> str:
        """Canonical ``$filter`` text; ``expand_in`` writes ``in`` as ``eq``/``or`` for OData 4.0 services."""
        return _render(self.tree, expand_in)

    def matches(self, record: Mapping[str, Any]) -> bool:
        """Whether a record (field name -> value; a missing field is null) passes the filter."""
        return _py_predicate(self.tree, record)

    def check_kinds(self, kinds: Mapping[str, str]) -> None:
        """Refuse what ``to_sqlalchemy`` refuses, from the fields' kinds (values.KINDS) alone: a value compared
        with a field of another kind, a string function on a field that is not text. For tables whose filter
        never compiles to SQL (web services), so a declaration is checked as a database table's is."""
        _KindCheck(kinds, self.context).predicate(self.tree)


def parse_filter(text: str | None, allowed_fields: Iterable[str] | None = None, context: str = "filter") -> Filter | None:
    """Parse and validate a filter; None or blank text means "no filter" and gives None."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise FilterError("%s: a filter must be a string, got %s" % (context, type(text).__name__))
    if not text.strip():
        return None
    if not HAS_ODATA_QUERY:
        raise FilterError(
            "%s: filters need the Python libraries odata-query (>=0.10) and python-dateutil on the host running the module: %s"
            % (context, (ODATA_QUERY_IMPORT_ERROR or "").strip().splitlines()[-1])
        )
    if len(text) > MAX_FILTER_LENGTH:
        raise FilterError("%s: the filter is %d characters long, at most %d are allowed" % (context, len(text), MAX_FILTER_LENGTH))
    offset = len(text) - len(text.lstrip())
    source = text.strip()
    tree = _parse(source, offset, context)
    allowed = None if allowed_fields is None else frozenset(allowed_fields)
    validator = _Validator(allowed, context)
    tree = validator.predicate(tree, 0)
    return Filter(text=source, tree=tree, fields=frozenset(validator.fields), context=context)


def combine(*filters: Filter | None) -> Filter | None:
    """AND of the given filters, skipping None (a mapping filter added to an endpoint's own condition)."""
    present = [f for f in filters if f is not None]
    if not present:
        return None
    if len(present) == 1:
        return present[0]
    parts: list = []
    for f in present:
        parts.extend(_left_spine(f.tree, oast.And))
    tree = parts[0]
    for part in parts[1:]:
        tree = oast.BoolOp(oast.And(), tree, part)
    contexts: list = []
    for f in present:
        if f.context not in contexts:
            contexts.append(f.context)
    return Filter(text=_render(tree, False), tree=tree, fields=frozenset().union(*(f.fields for f in present)), context=" + ".join(contexts))


def value_in(field_name: str, values: Iterable[Any], fold_case: bool = False, trim: bool = False, context: str = "match") -> Filter:
    """``field in (values)``, with ``tolower``/``trim`` of the field when asked, built as a tree.

    Why: a look-up of a page of record values needs no parsing, and as text it would soon pass
    MAX_FILTER_LENGTH; the tree compiles for SQL and OData like a parsed filter. Values are
    text, booleans, numbers, dates, datetimes (naive ones are UTC) or uuid.UUID.
    """
    subject: Any = oast.Identifier(field_name)
    if trim:
        subject = oast.Call(oast.Identifier("trim"), [subject])
    if fold_case:
        subject = oast.Call(oast.Identifier("tolower"), [subject])
    tree = oast.Compare(oast.In(), subject, oast.List([_literal_node(v) for v in values]))
    return Filter(text=_render(tree, False), tree=tree, fields=frozenset([field_name]), context=context)


def _literal_node(value: Any) -> Any:
    if isinstance(value, bool):
        return oast.Boolean("true" if value else "false")
    if isinstance(value, int):
        return oast.Integer(str(value))
    if isinstance(value, (decimal.Decimal, float)):
        return oast.Float(str(value))
    if isinstance(value, datetime.datetime):
        return oast.DateTime(_utc(value).replace(tzinfo=None).isoformat() + "Z")
    if isinstance(value, datetime.date):
        return oast.Date(value.isoformat())
    if isinstance(value, uuid.UUID):
        return oast.GUID(str(value))
    return oast.String(value if isinstance(value, str) else str(value))


###############################################################################
# Parsing
###############################################################################


def _parse(source: str, offset: int, context: str) -> Any:
    """Run the odata_query lexer and parser; fresh instances because they keep state."""
    lexer = ODataLexer()
    try:
        tokens = _fix_tokens(list(lexer.tokenize(source)), source)
        return ODataParser().parse(iter(tokens))
    except oexc.TokenizingException as exc:
        raise _syntax_error(source, offset, context, exc.token.index if exc.token is not None else len(source)) from None
    except oexc.ParsingException as exc:
        pos = len(source) if exc.eof or exc.token is None else exc.token.index
        raise _syntax_error(source, offset, context, pos) from None
    except oexc.UnknownFunctionException as exc:
        raise FilterError("%s: unknown function '%s'; %s" % (context, exc.function_name, ALLOWED)) from None
    except oexc.ArgumentCountException as exc:
        raise FilterError("%s: %s" % (context, exc)) from None
    except (oexc.ODataException, NotImplementedError, IndexError, TypeError) as exc:
        raise FilterError("%s: cannot parse the filter (%s); %s" % (context, exc, ALLOWED)) from None


def _syntax_error(source: str, offset: int, context: str, pos: int) -> FilterError:
    while pos < len(source) and source[pos].isspace():
        pos += 1
    if pos >= len(source):
        where = "at position %d: unexpected end of the filter" % (pos + offset)
        hint = "an operand or a closing parenthesis is missing"
    else:
        near = source[pos:pos + 25]
        where = "at position %d near '%s'" % (pos + offset, near + ("..." if len(source) > pos + 25 else ""))
        hint = _SYNTAX_HINTS.get(source[pos], ALLOWED)
    return FilterError("%s: syntax error %s; %s" % (context, where, hint))


def _token(type_: str, value: Any, like: Any, index: int, end: int) -> Any:
    tok = Token()
    tok.type = type_
    tok.value = value
    tok.lineno = like.lineno
    tok.index = index
    if "end" in getattr(Token, "__slots__", ()):  # sly >= 0.5 tokens also carry their end
        tok.end = end
    return tok


def _fix_tokens(tokens: list, source: str) -> list:
    """Repair three lexer quirks of odata_query 0.10 so valid OData parses.

    Field names starting with a keyword (``allow_credit``, ``nullable``, ``true_up``) are
    split by the lexer; ``not(...)`` without a space is read as a function call; and a
    standard one-item list ``in ('DK')`` needs a trailing comma for its parser.
    """
    out: list = []
    i = 0
    n = len(tokens)
    while i < n:
        tok = tokens[i]
        end = tokens[i + 1].index if i + 1 < n else len(source)
        if tok.type in _KEYWORD_PREFIX_TOKENS:
            match = _IDENTIFIER_RE.match(source, tok.index)
            if match and match.end() > end:
                j = i + 1
                while j < n and tokens[j].index < match.end():
                    j += 1
                if (tokens[j].index if j < n else len(source)) == match.end():
                    *namespace, name = match.group().split(".")
                    out.append(_token("ODATA_IDENTIFIER", oast.Identifier(name, tuple(namespace)), tok, tok.index, match.end()))
                    i = j
                    continue
        if tok.type == "ODATA_IDENTIFIER" and not tok.value.namespace and tok.value.name.lower() == "not" and i + 1 < n and tokens[i + 1].type == "(":
            out.append(_token("NOT", oast.Not(), tok, tok.index, tok.index + 3))
            i += 1
            continue
        out.append(tok)
        if tok.type == "IN" and i + 1 < n and tokens[i + 1].type == "(":
            # IN "(" [WS] literal [WS] ")"  ->  insert "," before ")"
            j = i + 2
            if j < n and tokens[j].type == "WS":
                j += 1
            if j < n and tokens[j].type in _LITERAL_TOKENS:
                k = j + 1
                if k < n and tokens[k].type == "WS":
                    k += 1
                if k < n and tokens[k].type == ")":
                    out.extend(tokens[i + 1:k])
                    out.append(_token(",", ",", tokens[k], tokens[k].index, tokens[k].index))
                    i = k
                    continue
        i += 1
    return out


###############################################################################
# Validation
###############################################################################


def _left_spine(node: Any, op_cls: type) -> list:
    """Operands of a left-nested chain ``a and b and c``; iterative so long chains need no recursion."""
    parts = []
    while isinstance(node, oast.BoolOp) and isinstance(node.op, op_cls):
        parts.append(node.right)
        node = node.left
    parts.append(node)
    parts.reverse()
    return parts


def _items(node: Any) -> list[Any]:
    """The items of the list on the right of ``in``.

    why: the parser types a comparison's right side as any node; validation admits ``in`` only with a list.
    """
    return cast("oast.List", node).val


def _text(node: Any) -> str:
    """The string literal a predicate function (contains, startswith, endswith) takes as its second argument."""
    return cast("oast.String", node).val


def _is_condition_node(node: Any) -> bool:
    """Nodes that are conditions by their form (so ``contains(a, 'x') eq true`` is allowed)."""
    if isinstance(node, (oast.BoolOp, oast.Compare)):
        return True
    if isinstance(node, oast.UnaryOp) and isinstance(node.op, oast.Not):
        return True
    return isinstance(node, oast.Call) and not node.func.namespace and node.func.name in PREDICATE_FUNCTIONS


_OP_WORDS = {
    "Eq": "eq", "NotEq": "ne", "Lt": "lt", "LtE": "le", "Gt": "gt", "GtE": "ge", "In": "in",
    "Add": "add", "Sub": "sub", "Mult": "mul", "Div": "div", "Mod": "mod", "USub": "-", "Not": "not", "And": "and", "Or": "or",
}


def _describe(node: Any) -> str:
    """Short OData text of any node, for error messages."""
    try:
        from odata_query.roundtrip import AstToODataVisitor

        text = AstToODataVisitor().visit(node)
    except Exception:  # best effort, only for a message
        text = type(node).__name__
    return text if len(text) <= 60 else text[:57] + "..."


class _Validator:
    """Whitelist check of a parsed tree; returns it with booleans/integers in canonical form."""

    def __init__(self, allowed: frozenset | None, context: str):
        self.allowed = allowed
        self.context = context
        self.fields: set = set()

    def error(self, message: str) -> FilterError:
        return FilterError("%s: %s" % (self.context, message))

    def predicate(self, node: Any, depth: int) -> Any:
        if depth > MAX_NESTING:
            raise self.error("the filter nests deeper than %d levels" % MAX_NESTING)
        if isinstance(node, oast.BoolOp):
            parts = [self.predicate(p, depth + 1) for p in _left_spine(node, type(node.op))]
            tree = parts[0]
            for part in parts[1:]:
                tree = oast.BoolOp(node.op, tree, part)
            return tree
        if isinstance(node, oast.UnaryOp) and isinstance(node.op, oast.Not):
            if not (_is_condition_node(node.operand) or isinstance(node.operand, (oast.Identifier, oast.Boolean))):
                raise self.error("'not' applies to a condition, not to %s; %s" % (_describe(node.operand), ALLOWED))
            return oast.UnaryOp(node.op, self.predicate(node.operand, depth + 1))
        if isinstance(node, oast.Compare):
            return self.compare(node, depth)
        if isinstance(node, oast.Call) and not node.func.namespace and node.func.name in PREDICATE_FUNCTIONS:
            return self.predicate_call(node, depth)
        if isinstance(node, oast.Identifier):
            # A bare field is a boolean field: ``active`` means ``active eq true``.
            return self.value(node, depth)
        if isinstance(node, oast.Boolean):
            return self.value(node, depth)
        if isinstance(node, oast.Call) and not node.func.namespace and node.func.name in VALUE_FUNCTIONS:
            raise self.error("%s is a value, not a condition; compare it, e.g. %s eq 'text'; %s" % (_describe(node), _describe(node), ALLOWED))
        if isinstance(node, (oast._Literal,)) and not isinstance(node, oast.List):
            self.value(node, depth)  # reports unsupported literal kinds first
            raise self.error("%s is a value, not a condition; %s" % (_describe(node), ALLOWED))
        return self.value(node, depth)  # raises the specific error for anything else

    def compare(self, node: Any, depth: int) -> Any:
        op = node.comparator
        word = _OP_WORDS[type(op).__name__]
        if isinstance(op, oast.In):
            left = self.value(node.left, depth + 1)
            if not isinstance(node.right, oast.List):
                raise self.error("'in' needs a parenthesised list of values, e.g. country in ('DK', 'SE')")
            items = []
            for item in _items(node.right):
                if not isinstance(item, oast._Literal) or isinstance(item, oast.List):
                    raise self.error("'in' lists may hold only values (null, true, false, numbers, 'strings', dates, GUIDs), not %s" % _describe(item))
                items.append(self.value(item, depth + 1))
            return oast.Compare(op, left, oast.List(items))
        for cond, other in ((node.left, node.right), (node.right, node.left)):
            if _is_condition_node(cond):
                if isinstance(cond, oast.UnaryOp) and not isinstance(other, oast.Boolean):
                    raise self.error(
                        "'not' binds tighter than comparisons: write not (%s %s %s) with parentheses"
                        % (_describe(cond.operand), word, _describe(other))
                    )
                if not isinstance(op, (oast.Eq, oast.NotEq)) or not isinstance(other, oast.Boolean):
                    raise self.error("the condition %s can only be compared with eq/ne true or false" % _describe(cond))
                if cond is node.left:
                    return oast.Compare(op, self.predicate(cond, depth + 1), self.value(other, depth + 1))
                return oast.Compare(op, self.value(other, depth + 1), self.predicate(cond, depth + 1))
        left = self.value(node.left, depth + 1)
        right = self.value(node.right, depth + 1)
        if not isinstance(op, (oast.Eq, oast.NotEq)) and (isinstance(left, oast.Null) or isinstance(right, oast.Null)):
            raise self.error("null can only be compared with eq or ne (%s null is never true)" % word)
        return oast.Compare(op, left, right)

    def predicate_call(self, node: Any, depth: int) -> Any:
        name = node.func.name
        if len(node.args) != 2:
            raise self.error("%s takes 2 arguments (field, 'text'), %d given" % (name, len(node.args)))
        subject, needle = node.args
        if not isinstance(needle, oast.String):
            raise self.error("the second argument of %s must be a 'string' literal, not %s" % (name, _describe(needle)))
        return oast.Call(node.func, [self.string_value(subject, name, depth + 1), needle])

    def string_value(self, node: Any, func: str, depth: int) -> Any:
        if isinstance(node, oast._Literal) and not isinstance(node, oast.String):
            raise self.error("%s works on text; %s is not text" % (func, _describe(node)))
        return self.value(node, depth)

    def value(self, node: Any, depth: int) -> Any:
        if depth > MAX_NESTING:
            raise self.error("the filter nests deeper than %d levels" % MAX_NESTING)
        if isinstance(node, oast.Identifier):
            return self.field(node)
        if isinstance(node, oast._Literal):
            return self.literal(node)
        if isinstance(node, oast.Call):
            name = node.func.full_name()
            if not node.func.namespace and name in VALUE_FUNCTIONS:
                if len(node.args) != 1:
                    raise self.error("%s takes 1 argument, %d given" % (name, len(node.args)))
                return oast.Call(node.func, [self.string_value(node.args[0], name, depth + 1)])
            if not node.func.namespace and name in PREDICATE_FUNCTIONS:
                raise self.error("%s is a condition, it cannot be used as a value" % _describe(node))
            raise self.error("function '%s' is not supported; %s" % (name, ALLOWED))
        if isinstance(node, oast.BinOp):
            raise self.error("arithmetic ('%s' in %s) is not supported; %s" % (_OP_WORDS.get(type(node.op).__name__, "?"), _describe(node), ALLOWED))
        if isinstance(node, oast.UnaryOp):
            if isinstance(node.op, oast.USub):
                raise self.error("arithmetic (unary '-' in %s) is not supported; write negative numbers as literals, e.g. -5; %s" % (_describe(node), ALLOWED))
            raise self.error(
                "'not' applies to a whole condition: write not (%s ...) with parentheses instead of %s" % (_describe(node.operand), _describe(node))
            )
        if isinstance(node, oast.Attribute):
            raise self.error("navigation path '%s' is not supported, only fields of the table itself; %s" % (_describe(node), ALLOWED))
        if isinstance(node, oast.CollectionLambda):
            lam = type(node.operator).__name__.lower()
            raise self.error("lambda operator '%s' in '%s' is not supported; %s" % (lam, _describe(node), ALLOWED))
        if isinstance(node, (oast.BoolOp, oast.Compare)):
            raise self.error("the condition %s cannot be used as a value; %s" % (_describe(node), ALLOWED))
        raise self.error("%s is not supported; %s" % (_describe(node), ALLOWED))

    def field(self, node: Any) -> Any:
        name = node.full_name()
        if node.namespace:
            raise self.error("qualified name '%s' is not supported, only fields of the table itself; %s" % (name, ALLOWED))
        if self.allowed is not None and name not in self.allowed:
            hint = ""
            close = [a for a in self.allowed if a.lower() == name.lower()] or difflib.get_close_matches(name, list(self.allowed), n=1)
            if close:
                hint = " (did you mean '%s'?)" % sorted(close)[0]
            raise self.error("unknown field '%s'%s; allowed fields: %s" % (name, hint, ", ".join(sorted(self.allowed)) or "(none)"))
        self.fields.add(name)
        return node

    def literal(self, node: Any) -> Any:
        if isinstance(node, oast.Boolean):
            return oast.Boolean(node.val.lower())
        if isinstance(node, oast.Integer):
            value = int(node.val)
            if not -_INT64 <= value < _INT64:
                raise self.error("integer %s is out of range (64-bit)" % node.val)
            return oast.Integer(str(value))
        if isinstance(node, oast.Float):
            if not math.isfinite(float(decimal.Decimal(node.val))):
                raise self.error("number %s is out of range" % node.val)
            return node
        if isinstance(node, (oast.Null, oast.String)):
            return node
        if isinstance(node, (oast.Date, oast.DateTime, oast.GUID)):
            try:
                _py_literal(node)
            except (ValueError, OverflowError):
                raise self.error("invalid %s literal '%s'" % (type(node).__name__.lower(), node.val)) from None
            return node
        kind = {"Time": "time-of-day", "Duration": "duration", "Geography": "geography", "List": "list"}.get(type(node).__name__, type(node).__name__)
        raise self.error("%s values (%s) are not supported; %s" % (kind, _describe(node), ALLOWED))


###############################################################################
# Literals and OData text
###############################################################################


def _utc(value: datetime.datetime) -> datetime.datetime:
    """Aware UTC datetime; naive values are taken as UTC like everywhere in the engine."""
    if value.tzinfo is None:
        return value.replace(tzinfo=datetime.timezone.utc)
    return value.astimezone(datetime.timezone.utc)


def _py_literal(node: Any) -> Any:
    """Python value of a validated literal node (decimals stay exact, datetimes aware UTC)."""
    if isinstance(node, oast.Null):
        return None
    if isinstance(node, oast.Boolean):
        return node.val.lower() == "true"
    if isinstance(node, oast.Integer):
        return int(node.val)
    if isinstance(node, oast.Float):
        return decimal.Decimal(node.val)
    if isinstance(node, oast.String):
        return node.val
    if isinstance(node, oast.DateTime):
        return _utc(isoparse(node.val))
    if isinstance(node, oast.Date):
        return datetime.date.fromisoformat(node.val)
    if isinstance(node, oast.GUID):
        return uuid.UUID(node.val)
    raise TypeError("unsupported literal %r" % (node,))


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _render(node: Any, expand_in: bool) -> str:
    """Canonical OData text with the fewest parentheses that keep the same tree."""
    if isinstance(node, oast.BoolOp):
        word = "and" if isinstance(node.op, oast.And) else "or"
        prec = 2 if word == "and" else 1
        parts = _left_spine(node, type(node.op))
        out = []
        for index, part in enumerate(parts):
            text = _render(part, expand_in)
            if isinstance(part, oast.BoolOp):
                part_prec = 2 if isinstance(part.op, oast.And) else 1
                if part_prec < prec or (index > 0 and part_prec == prec):
                    text = "(" + text + ")"
            elif expand_in and _expands(part):
                text = "(" + text + ")"
            out.append(text)
        return (" %s " % word).join(out)
    if isinstance(node, oast.UnaryOp):
        operand = _render(node.operand, expand_in)
        if not isinstance(node.operand, (oast.Call, oast.Identifier, oast._Literal, oast.UnaryOp)):
            operand = "(" + operand + ")"
        return "not " + operand
    if isinstance(node, oast.Compare):
        if isinstance(node.comparator, oast.In):
            subject = _render(node.left, expand_in)
            items = [_render(item, expand_in) for item in _items(node.right)]
            if expand_in:
                return " or ".join("%s eq %s" % (subject, item) for item in items)
            return "%s in (%s)" % (subject, ", ".join(items))
        sides = []
        for side in (node.left, node.right):
            text = _render(side, expand_in)
            if _is_condition_node(side) and not isinstance(side, oast.Call):
                text = "(" + text + ")"
            sides.append(text)
        return "%s %s %s" % (sides[0], _OP_WORDS[type(node.comparator).__name__], sides[1])
    if isinstance(node, oast.Call):
        return "%s(%s)" % (node.func.full_name(), ", ".join(_render(a, expand_in) for a in node.args))
    if isinstance(node, oast.Identifier):
        return node.full_name()
    if isinstance(node, oast.Null):
        return "null"
    if isinstance(node, oast.String):
        return _quote(node.val)
    if isinstance(node, oast.Boolean):
        return node.val.lower()
    if isinstance(node, (oast.Integer, oast.Float, oast.Date, oast.DateTime, oast.GUID)):
        return node.val
    raise TypeError("cannot render %r" % (node,))


def _expands(node: Any) -> bool:
    """An ``in`` with several items becomes an ``or`` chain that needs parentheses."""
    return isinstance(node, oast.Compare) and isinstance(node.comparator, oast.In) and len(_items(node.right)) > 1


###############################################################################
# Python evaluation
###############################################################################


class _Mismatch:
    """A value of the wrong type for its operation (tolower of a number): equal to nothing."""

    def __repr__(self) -> str:
        return "<mismatch>"


_MISMATCH = _Mismatch()
_PY_ORDER: dict = {"Lt": operator.lt, "LtE": operator.le, "Gt": operator.gt, "GtE": operator.ge}
_NUMBERS = (int, float, decimal.Decimal)


def _py_predicate(node: Any, record: Mapping[str, Any]) -> bool:
    if isinstance(node, oast.BoolOp):
        parts = _left_spine(node, type(node.op))
        if isinstance(node.op, oast.And):
            return all(_py_predicate(p, record) for p in parts)
        return any(_py_predicate(p, record) for p in parts)
    if isinstance(node, oast.UnaryOp):
        return not _py_predicate(node.operand, record)
    if isinstance(node, oast.Boolean):
        return _py_literal(node)
    if isinstance(node, oast.Identifier):
        return _py_compare("Eq", record.get(node.name), True)
    if isinstance(node, oast.Call):
        subject = _py_value(node.args[0], record)
        needle = _text(node.args[1])
        if not isinstance(subject, str):
            return False
        if node.func.name == "contains":
            return needle in subject
        if node.func.name == "startswith":
            return subject.startswith(needle)
        return subject.endswith(needle)
    op = type(node.comparator).__name__
    if _is_condition_node(node.left) or _is_condition_node(node.right):
        cond, lit = (node.left, node.right) if _is_condition_node(node.left) else (node.right, node.left)
        return (_py_predicate(cond, record) == _py_literal(lit)) == (op == "Eq")
    left = _py_value(node.left, record)
    if op == "In":
        return any(_py_compare("Eq", left, _py_literal(item)) for item in _items(node.right))
    return _py_compare(op, left, _py_value(node.right, record))


def _py_value(node: Any, record: Mapping[str, Any]) -> Any:
    if isinstance(node, oast.Identifier):
        return record.get(node.name)
    if isinstance(node, oast.Call):
        value = _py_value(node.args[0], record)
        if value is None or value is _MISMATCH:
            return value
        if not isinstance(value, str):
            return _MISMATCH
        if node.func.name == "tolower":
            return value.lower()
        if node.func.name == "toupper":
            return value.upper()
        return value.strip()
    return _py_literal(node)


def _py_compare(op: str, a: Any, b: Any) -> bool:
    """OData comparison: null equals only null, ordering with null or across types is false."""
    if a is None or b is None:
        if op == "Eq":
            return a is None and b is None
        return op == "NotEq" and not (a is None and b is None)
    pair = _coerce(a, b)
    if pair is None:
        return op == "NotEq"
    a, b = pair
    try:
        if op == "Eq":
            return bool(a == b)
        if op == "NotEq":
            return bool(a != b)
        return bool(_PY_ORDER[op](a, b))
    except TypeError:
        return op == "NotEq"


def _coerce(a: Any, b: Any) -> tuple | None:
    """Bring two non-null values to comparable types, or None when they are not comparable."""
    if a is _MISMATCH or b is _MISMATCH:
        return None
    if isinstance(a, _NUMBERS) and isinstance(b, _NUMBERS):
        # A float column compared with an exact literal compares as float, like the database does.
        if isinstance(a, float) and isinstance(b, decimal.Decimal):
            return a, float(b)
        if isinstance(b, float) and isinstance(a, decimal.Decimal):
            return float(a), b
        return a, b
    if isinstance(a, str) and isinstance(b, str):
        return a, b
    if isinstance(a, datetime.date) or isinstance(b, datetime.date):
        a, b = _temporal(a), _temporal(b)
        if a is None or b is None:
            return None
        if isinstance(a, datetime.datetime) != isinstance(b, datetime.datetime):
            a, b = _as_datetime(a), _as_datetime(b)
        return a, b
    if isinstance(a, uuid.UUID) or isinstance(b, uuid.UUID):
        a, b = _as_uuid(a), _as_uuid(b)
        return None if a is None or b is None else (a, b)
    if type(a) is type(b):
        return a, b
    return None


def _temporal(value: Any) -> Any:
    """date stays date; datetime becomes aware UTC; ISO text (web records) is parsed."""
    if isinstance(value, str):
        try:
            value = isoparse(value.strip())
        except (ValueError, OverflowError):
            return None
    if isinstance(value, datetime.datetime):
        return _utc(value)
    if isinstance(value, datetime.date):
        return value
    return None


def _as_datetime(value: Any) -> datetime.datetime:
    if isinstance(value, datetime.datetime):
        return value
    return datetime.datetime(value.year, value.month, value.day, tzinfo=datetime.timezone.utc)


def _as_uuid(value: Any) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        # Text equals a GUID in its canonical lower- or upper-case form only, as in SQL.
        try:
            parsed = uuid.UUID(value)
        except ValueError:
            return None
        return parsed if value in (str(parsed), str(parsed).upper()) else None
    return None


###############################################################################
# SQLAlchemy compilation
###############################################################################

_SA_LOCK = threading.Lock()
_SA_SUPPORT: dict = {}
_LIKE_ESCAPE = "/"


def _like_escape(text: str) -> str:
    """Escape LIKE wildcards so the literal matches itself ('/' is safe in every dialect's SQL text)."""
    return text.replace(_LIKE_ESCAPE, _LIKE_ESCAPE * 2).replace("%", _LIKE_ESCAPE + "%").replace("_", _LIKE_ESCAPE + "_")


def _sa_support() -> dict:
    """Import SQLAlchemy and define the string-match construct on first use only."""
    with _SA_LOCK:
        if _SA_SUPPORT:
            return _SA_SUPPORT
        import sqlalchemy as sa
        from sqlalchemy.ext.compiler import compiles
        from sqlalchemy.sql.elements import ColumnElement
        from sqlalchemy.sql.visitors import InternalTraversal

        class StringMatch(ColumnElement):
            """startswith/endswith/contains against a bound literal.

            Databases render ``LIKE :pattern ESCAPE '/'`` with the wildcards of the literal
            escaped. SQLite's LIKE ignores case while its ``=`` does not, so there it is
            ``instr``/``substr``, which compare exactly like ``matches`` does.
            """

            __visit_name__ = "tablesync_string_match"
            inherit_cache = True
            _traverse_internals = [
                ("subject", InternalTraversal.dp_clauseelement),
                ("raw", InternalTraversal.dp_clauseelement),
                ("pattern", InternalTraversal.dp_clauseelement),
                ("kind", InternalTraversal.dp_string),
            ]
            type = sa.Boolean()

            def __init__(self, subject: Any, kind: str, needle: str):
                self.subject = subject
                self.kind = kind
                self.raw = sa.bindparam(None, needle, type_=sa.String())
                pattern = _like_escape(needle)
                if kind in ("contains", "endswith"):
                    pattern = "%" + pattern
                if kind in ("contains", "startswith"):
                    pattern = pattern + "%"
                self.pattern = sa.bindparam(None, pattern, type_=sa.String())

            def self_group(self, against: Any = None) -> Any:
                return self  # rendered with its own parentheses

        @compiles(StringMatch)
        def _compile_like(element: Any, compiler: Any, **kw: Any) -> str:
            return "(%s LIKE %s ESCAPE '%s')" % (compiler.process(element.subject, **kw), compiler.process(element.pattern, **kw), _LIKE_ESCAPE)

        @compiles(StringMatch, "sqlite")
        def _compile_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
            subject = compiler.process(element.subject, **kw)
            raw = compiler.process(element.raw, **kw)
            if element.kind == "contains":
                return "(instr(%s, %s) > 0)" % (subject, raw)
            if element.kind == "startswith":
                return "(instr(%s, %s) = 1)" % (subject, raw)
            return "(substr(%s, -length(%s)) = %s)" % (subject, raw, compiler.process(element.raw, **kw))

        _SA_SUPPORT.update(sa=sa, StringMatch=StringMatch)
        return _SA_SUPPORT


def _has_column(columns: Mapping[str, Any], name: str) -> bool:
    try:
        columns[name]
    except KeyError:
        return False
    return True


def _column_names(columns: Mapping[str, Any]) -> list:
    try:
        return [str(k) for k in columns.keys()]  # noqa: SIM118 - ColumnCollection iterates columns, not keys
    except (AttributeError, TypeError):
        return []


_MIRROR = {"Eq": "Eq", "NotEq": "NotEq", "Lt": "Gt", "LtE": "GtE", "Gt": "Lt", "GtE": "LtE"}
_COMPATIBLE: dict = {
    bool: (bool, int),
    int: (int, float, decimal.Decimal),
    decimal.Decimal: (int, float, decimal.Decimal),
    str: (str, enum.Enum),
    uuid.UUID: (uuid.UUID, str),
    datetime.datetime: (datetime.date,),
    datetime.date: (datetime.date,),
}
_KIND_NAMES = (
    (bool, "boolean"),
    (int, "integer"),
    (float, "float"),
    (decimal.Decimal, "decimal"),
    (str, "text"),
    (datetime.datetime, "datetime"),
    (datetime.date, "date"),
    (uuid.UUID, "GUID"),
)


def _comparable(value: Any, ptype: type) -> bool:
    """Whether a literal value fits a column whose values are of ``ptype``."""
    for kind in (bool, int, decimal.Decimal, str, uuid.UUID, datetime.datetime, datetime.date):
        if isinstance(value, kind):
            return issubclass(ptype, _COMPATIBLE[kind])
    return True


def _kind_name(ptype: type) -> str:
    for kind, name in _KIND_NAMES:
        if issubclass(ptype, kind):
            return name
    return ptype.__name__


def _python_type(type_: Any) -> Any:
    try:
        return type_.python_type
    except (AttributeError, NotImplementedError):
        return None


_KIND_TYPES: dict = {
    "text": str,
    "integer": int,
    "decimal": decimal.Decimal,
    "float": float,
    "boolean": bool,
    "date": datetime.date,
    "datetime": datetime.datetime,
    "uuid": uuid.UUID,
    "binary": bytes,
}


class _KindCheck:
    """The type checks of _SqlCompiler over field kinds, with its messages."""

    def __init__(self, kinds: Mapping[str, str], context: str):
        self.kinds = kinds
        self.context = context

    def ptype(self, node: Any) -> type | None:
        """Python type of a field or string function's values; None for a literal or a field of unknown kind."""
        if isinstance(node, oast.Identifier):
            return _KIND_TYPES.get(self.kinds.get(node.name, ""))
        if isinstance(node, oast.Call):
            self.check_text(node.func.name, node.args[0])
            return str
        return None

    def check_text(self, func: str, node: Any) -> None:
        ptype = self.ptype(node)
        if ptype is not None and not issubclass(ptype, str):
            raise FilterError("%s: %s works on text; %s holds %s values" % (self.context, func, _render(node, False), _kind_name(ptype)))

    def fits(self, literal: Any, subject: Any) -> None:
        ptype = self.ptype(subject)
        if ptype is None or isinstance(literal, oast.Null):
            return
        if not _comparable(_py_literal(literal), ptype):
            raise FilterError("%s: %s holds %s values, it cannot be compared with %s"
                              % (self.context, _render(subject, False), _kind_name(ptype), _render(literal, False)))

    def predicate(self, node: Any) -> None:
        if isinstance(node, oast.BoolOp):
            for part in _left_spine(node, type(node.op)):
                self.predicate(part)
        elif isinstance(node, oast.UnaryOp):
            self.predicate(node.operand)
        elif isinstance(node, oast.Identifier):
            self.fits(oast.Boolean("true"), node)  # a bare field means field eq true
        elif isinstance(node, oast.Call):
            self.check_text(node.func.name, node.args[0])
        elif isinstance(node, oast.Compare):
            if _is_condition_node(node.left) or _is_condition_node(node.right):
                self.predicate(node.left if _is_condition_node(node.left) else node.right)
            elif isinstance(node.comparator, oast.In):
                for item in _items(node.right):
                    self.fits(item, node.left)
            else:
                for literal, subject in ((node.left, node.right), (node.right, node.left)):
                    if isinstance(literal, oast._Literal) and not isinstance(subject, oast._Literal):
                        self.fits(literal, subject)
                    else:
                        self.ptype(subject)  # string functions check their argument


class _SqlCompiler:
    """Tree -> SQLAlchemy Core; every atom is two-valued (TRUE/FALSE, never NULL)."""

    def __init__(self, columns: Mapping[str, Any], context: str):
        support = _sa_support()
        self.sa = support["sa"]
        self.string_match = support["StringMatch"]
        self.columns = columns
        self.context = context

    def check_text(self, func: str, node: Any, expr: Any) -> None:
        """String functions on a typed non-text column would fail in PostgreSQL and differ in Python."""
        ptype = _python_type(getattr(expr, "type", None))
        if ptype is not None and not issubclass(ptype, (str, enum.Enum)):
            raise FilterError("%s: %s works on text; %s holds %s values" % (self.context, func, _render(node, False), _kind_name(ptype)))

    def predicate(self, node: Any) -> Any:
        sa = self.sa
        if isinstance(node, oast.BoolOp):
            parts = [self.predicate(p) for p in _left_spine(node, type(node.op))]
            return sa.and_(*parts) if isinstance(node.op, oast.And) else sa.or_(*parts)
        if isinstance(node, oast.UnaryOp):
            return sa.not_(self.predicate(node.operand))
        if isinstance(node, oast.Boolean):
            return sa.true() if _py_literal(node) else sa.false()
        if isinstance(node, oast.Identifier):
            return self.compare("Eq", node, oast.Boolean("true"))
        if isinstance(node, oast.Call):
            subject, nullable = self.value(node.args[0], None)
            self.check_text(node.func.name, node.args[0], subject)
            needle = _text(node.args[1])
            # Every text starts with, ends with and contains ''; SQLite's substr(x, -0) would not say so.
            condition = sa.true() if needle == "" else self.string_match(subject, node.func.name, needle)
            return sa.and_(subject.is_not(None), condition) if nullable else condition
        op = type(node.comparator).__name__
        if _is_condition_node(node.left) or _is_condition_node(node.right):
            cond, lit = (node.left, node.right) if _is_condition_node(node.left) else (node.right, node.left)
            expr = self.predicate(cond)
            return expr if _py_literal(lit) == (op == "Eq") else sa.not_(expr)
        if op == "In":
            return self.in_(node.left, _items(node.right))
        return self.compare(op, node.left, node.right)

    def value(self, node: Any, peer: Any, peer_node: Any = None) -> tuple:
        """(SQL expression, may it be NULL); literals are bound with a type fitting ``peer``."""
        sa = self.sa
        if isinstance(node, oast.Identifier):
            column = self.columns[node.name]
            if hasattr(column, "__clause_element__"):
                column = column.__clause_element__()
            return column, True
        if isinstance(node, oast.Call):
            inner, nullable = self.value(node.args[0], None)
            self.check_text(node.func.name, node.args[0], inner)
            if node.func.name == "tolower":
                return sa.func.lower(inner, type_=sa.String()), nullable
            if node.func.name == "toupper":
                return sa.func.upper(inner, type_=sa.String()), nullable
            return sa.func.ltrim(sa.func.rtrim(inner, type_=sa.String()), type_=sa.String()), nullable
        value, type_ = self.bind_value(node, peer, peer_node)
        return sa.bindparam(None, value, type_=type_), False

    def bind_value(self, node: Any, peer: Any, peer_node: Any = None) -> tuple:
        """Python value and SQL type of a literal: the peer column's type when it fits the value."""
        sa = self.sa
        value = _py_literal(node)
        peer_type = getattr(peer, "type", None)
        ptype = _python_type(peer_type)
        if ptype is not None and peer_node is not None and not _comparable(value, ptype):
            # Databases disagree on such comparisons (SQLite orders any number before any text,
            # PostgreSQL fails), and matches() calls them false: refuse them up front.
            raise FilterError(
                "%s: %s holds %s values, it cannot be compared with %s"
                % (self.context, _render(peer_node, False), _kind_name(ptype), _render(node, False))
            )
        if isinstance(value, bool):
            return value, peer_type if ptype in (bool, int) else sa.Boolean()
        if isinstance(value, int):
            return value, peer_type if ptype in (int, float, decimal.Decimal) else sa.Integer()
        if isinstance(value, decimal.Decimal):
            if ptype is decimal.Decimal:
                return value, peer_type
            if ptype is float:
                return float(value), peer_type
            return value, sa.Numeric(asdecimal=True)
        if isinstance(value, str):
            return value, peer_type if ptype is str else sa.String()
        if isinstance(value, uuid.UUID):
            if ptype is uuid.UUID:
                return value, peer_type
            return str(value), sa.String()
        if isinstance(value, datetime.datetime):
            if ptype is datetime.datetime and getattr(peer_type, "timezone", False):
                return value, peer_type
            naive = value.replace(tzinfo=None)
            return naive, peer_type if ptype is datetime.datetime else sa.DateTime()
        if isinstance(value, datetime.date):
            if ptype is datetime.datetime:
                return datetime.datetime(value.year, value.month, value.day), peer_type
            return value, peer_type if ptype is datetime.date else sa.Date()
        raise TypeError("unsupported literal %r" % (node,))

    def operands(self, left: Any, right: Any) -> tuple:
        """Compile both sides, binding a literal with the other side's type."""
        if isinstance(left, oast._Literal) and not isinstance(right, oast._Literal):
            rexpr, rnull = self.value(right, None)
            lexpr, lnull = self.value(left, rexpr, right)
        else:
            lexpr, lnull = self.value(left, None)
            rexpr, rnull = self.value(right, lexpr, left)
        return lexpr, lnull, rexpr, rnull

    def compare(self, op: str, left: Any, right: Any) -> Any:
        sa = self.sa
        lnullnode, rnullnode = isinstance(left, oast.Null), isinstance(right, oast.Null)
        if lnullnode or rnullnode:
            if lnullnode and rnullnode:
                return sa.true() if op == "Eq" else sa.false()
            expr, nullable = self.value(right if lnullnode else left, None)
            if not nullable:
                return sa.false() if op == "Eq" else sa.true()
            return expr.is_(None) if op == "Eq" else expr.is_not(None)
        if op in ("Eq", "NotEq") and isinstance(left, oast.GUID) != isinstance(right, oast.GUID):
            guid, other = (left, right) if isinstance(left, oast.GUID) else (right, left)
            if not isinstance(other, oast._Literal) and _python_type(getattr(self.value(other, None)[0], "type", None)) is not uuid.UUID:
                member = self.in_(other, [guid])  # text column: canonical lower- or upper-case GUID
                return member if op == "Eq" else sa.not_(member)
        if isinstance(left, oast.DateTime) != isinstance(right, oast.DateTime):
            moment, other = (left, right) if isinstance(left, oast.DateTime) else (right, left)
            if not isinstance(other, oast._Literal) and _python_type(getattr(self.value(other, None)[0], "type", None)) is datetime.date:
                return self.date_vs_datetime(_MIRROR[op] if moment is left else op, other, moment)
        lexpr, lnull, rexpr, rnull = self.operands(left, right)
        guards = [e.is_not(None) for e, n in ((lexpr, lnull), (rexpr, rnull)) if n]
        if op in ("Eq", "NotEq"):
            equal = sa.and_(*guards, lexpr == rexpr) if guards else (lexpr == rexpr)
            if lnull and rnull:
                equal = sa.or_(equal, sa.and_(lexpr.is_(None), rexpr.is_(None)))
            if op == "Eq":
                return equal
            if lnull != rnull:
                nullable_side = lexpr if lnull else rexpr
                return sa.or_(nullable_side.is_(None), lexpr != rexpr)
            return sa.not_(equal) if lnull else (lexpr != rexpr)
        sql_op: Callable[[Any, Any], Any] = {"Lt": operator.lt, "LtE": operator.le, "Gt": operator.gt, "GtE": operator.ge}[op]
        core = sql_op(lexpr, rexpr)
        return sa.and_(*guards, core) if guards else core

    def date_vs_datetime(self, op: str, subject: Any, moment: Any) -> Any:
        """A date column against a datetime: the date is its midnight, as in matches().

        Compared as dates so the database need not convert (SQLite would compare the texts
        '2024-01-01' and '2024-01-01 00:00:00.000000' and call them different).
        """
        when = _py_literal(moment).replace(tzinfo=None)  # naive UTC
        day = oast.Date(when.date().isoformat())
        if when.time() == datetime.time(0):
            return self.compare(op, subject, day)
        if op in ("Eq", "NotEq"):  # no midnight equals a moment inside a day
            return self.sa.false() if op == "Eq" else self.sa.true()
        return self.compare("Gt" if op in ("Gt", "GtE") else "LtE", subject, day)

    def in_(self, left: Any, items: list) -> Any:
        sa = self.sa
        subject, nullable = self.value(left, None)
        if _python_type(getattr(subject, "type", None)) is datetime.date:
            days = []
            for item in items:
                if isinstance(item, oast.DateTime):
                    when = _py_literal(item).replace(tzinfo=None)
                    if when.time() != datetime.time(0):
                        continue  # never the midnight of a date
                    item = oast.Date(when.date().isoformat())
                days.append(item)
            items = days
        has_null = any(isinstance(i, oast.Null) for i in items)
        binds = []
        for item in items:
            if not isinstance(item, oast.Null):
                value, type_ = self.bind_value(item, subject, left)
                binds.append(sa.bindparam(None, value, type_=type_))
                if isinstance(item, oast.GUID) and isinstance(value, str) and value.upper() != value:
                    binds.append(sa.bindparam(None, value.upper(), type_=type_))
        parts = []
        if binds:
            member = subject.in_(binds)
            parts.append(sa.and_(subject.is_not(None), member) if nullable else member)
        if has_null and nullable:
            parts.append(subject.is_(None))
        if not parts:
            return sa.false()
        return parts[0] if len(parts) == 1 else sa.or_(*parts)
