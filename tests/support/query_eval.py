"""OData system query options evaluated in Python: ``$filter``, ``$orderby``, ``$select``.

``$filter`` is parsed with the ``odata_query`` library (``ODataLexer``/``ODataParser``) and the
AST is evaluated against stored rows. Supported: ``eq ne gt ge lt le``, ``and or not``,
``in``, ``contains``/``startswith``/``endswith``, ``null``, string/number/bool/date/datetime/
GUID literals and column-to-column comparison (Dataverse documents it, filter-rows.md).

Semantics that follow the Dataverse docs (filter-rows.md):

* string comparison is case-insensitive;
* ``%``, ``_``, ``[..]`` and ``[^..]`` are SQL wildcards inside contains/startswith/endswith;
* only contains/startswith/endswith are OData functions (no tolower, no arithmetic).

Operand types are checked like an OData server does ("A binary operator with incompatible
types was detected"), so a quoted number or an unquoted string fails as it would for real.

Null handling: Dataverse translates ``$filter`` to SQL, so ``ne``/``lt``/... never match a null
column (``x eq null`` / ``x ne null`` test for null). Business Central fields are never null.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable

from odata_query import ast
from odata_query.exceptions import ODataException
from odata_query.grammar import ODataLexer, ODataParser

from .odata_model import ColumnType, is_guid, normalize_guid, parse_datetime


class QueryError(ValueError):
    """A query option the service rejects with 400 Bad Request."""


@dataclass(frozen=True)
class QueryOptions:
    case_insensitive: bool = True
    sql_nulls: bool = True  # Dataverse: comparisons other than eq/ne null never match null
    sql_wildcards: bool = True  # Dataverse: % _ [] are wildcards in contains/startswith/endswith
    allow_in: bool = True
    reject_or_across_fields: bool = False  # Business Central "known limitations"
    type_name: str = "entity"  # used in "Could not find a property named ..." messages


# --------------------------------------------------------------------------------------------
# $filter
# --------------------------------------------------------------------------------------------

_LITERAL_TYPES = {
    ast.Integer: "int",
    ast.Float: "decimal",
    ast.String: "string",
    ast.Boolean: "bool",
    ast.DateTime: "datetime",
    ast.Date: "date",
    ast.GUID: "guid",
}

_EDM = {
    "int": "Edm.Int32",
    "decimal": "Edm.Decimal",
    "string": "Edm.String",
    "bool": "Edm.Boolean",
    "datetime": "Edm.DateTimeOffset",
    "date": "Edm.Date",
    "guid": "Edm.Guid",
}

_OPERATOR_KIND = {
    ast.Eq: "Equal",
    ast.NotEq: "NotEqual",
    ast.Lt: "LessThan",
    ast.LtE: "LessThanOrEqual",
    ast.Gt: "GreaterThan",
    ast.GtE: "GreaterThanOrEqual",
    ast.In: "In",
}


def parse_filter(text: str) -> ast._Node:
    try:
        return ODataParser().parse(ODataLexer().tokenize(text))
    except ODataException as exc:
        raise QueryError(f"Syntax error in $filter '{text}': {exc}") from None
    except Exception as exc:  # the sly parser raises assorted errors on malformed input
        raise QueryError(f"Syntax error in $filter '{text}': {exc}") from None


class FilterEvaluator:
    """Compile a parsed ``$filter`` into a predicate over stored rows."""

    def __init__(self, columns: dict[str, ColumnType], options: QueryOptions):
        self.columns = columns
        self.options = options

    # -- public ----------------------------------------------------------------------------
    def compile(self, text: str) -> Callable[[dict[str, Any]], bool]:
        tree = parse_filter(text)
        self._check(tree)
        if self.options.reject_or_across_fields:
            self._check_or_fields(tree)

        def predicate(row: dict[str, Any]) -> bool:
            return self._eval(tree, row) is True

        return predicate

    @staticmethod
    def equality_values(text: str) -> tuple[str, set[str]] | None:
        """``(column, values)`` when the filter only lists values of one text or GUID column (``a eq 'x' or a eq 'y'``):
        the rows it can match hold one of ``values`` (lower case), as an index would find them."""
        found: dict[str, set[str]] = {}

        def walk(node: ast._Node) -> bool:
            if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
                return walk(node.left) and walk(node.right)
            if (isinstance(node, ast.Compare) and isinstance(node.comparator, ast.Eq) and isinstance(node.left, ast.Identifier)
                    and isinstance(node.right, (ast.String, ast.GUID))):
                found.setdefault(node.left.name, set()).add(str(node.right.val).lower())
                return True
            return False

        try:
            tree = parse_filter(text)
        except QueryError:
            return None
        if not walk(tree) or len(found) != 1:
            return None
        return next(iter(found.items()))

    # -- static checks -----------------------------------------------------------------------
    def _column(self, name: str) -> ColumnType:
        if name not in self.columns:
            raise QueryError(f"Could not find a property named '{name}' on type '{self.options.type_name}'.")
        return self.columns[name]

    def _operand_type(self, node: ast._Node) -> str | None:
        if isinstance(node, ast.Identifier):
            return self._column(node.name).name
        if isinstance(node, ast.Null):
            return None
        for literal, name in _LITERAL_TYPES.items():
            if isinstance(node, literal):
                return name
        if isinstance(node, ast.Attribute):
            raise QueryError("Navigation property paths in $filter are not supported by this test double.")
        if isinstance(node, ast.BinOp):
            raise QueryError("Arithmetic operators are not supported in $filter.")
        if isinstance(node, ast.Call):
            raise QueryError(f"Function '{node.func.name}' cannot be used as a comparison operand.")
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return self._operand_type(node.operand)
        raise QueryError(f"Unsupported expression in $filter: {type(node).__name__}")

    def _compatible(self, left: str | None, right: str | None, node: ast.Compare) -> None:
        if left is None or right is None or left == right:
            return
        numeric = {"int", "decimal"}
        if left in numeric and right in numeric:
            return
        if {left, right} == {"guid", "string"}:
            # Dataverse documents `_owninguser_value eq '<guid>'` (filter-rows.md): a quoted GUID works.
            literal = node.right if left == "guid" else node.left
            if isinstance(literal, ast.String) and not is_guid(literal.val):
                raise QueryError(f"'{literal.val}' is not a valid GUID.")
            return
        if {left, right} == {"datetime", "date"}:
            return
        kind = _OPERATOR_KIND.get(type(node.comparator), "Equal")
        raise QueryError(
            "A binary operator with incompatible types was detected. Found operand types "
            f"'{_EDM[left]}' and '{_EDM[right]}' for operator kind '{kind}'."
        )

    def _check(self, node: ast._Node) -> None:
        if isinstance(node, ast.BoolOp):
            self._check(node.left)
            self._check(node.right)
            return
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            self._check(node.operand)
            return
        if isinstance(node, ast.Compare):
            if isinstance(node.comparator, ast.In):
                if not self.options.allow_in:
                    raise QueryError("The 'in' operator is not supported.")
                left = self._operand_type(node.left)
                if not isinstance(node.right, ast.List):
                    raise QueryError("The right operand of 'in' must be a list of literals.")
                for item in node.right.val:
                    self._compatible(left, self._operand_type(item), ast.Compare(node.comparator, node.left, item))
                return
            self._compatible(self._operand_type(node.left), self._operand_type(node.right), node)
            return
        if isinstance(node, ast.Call):
            name = node.func.name.lower()
            if node.func.namespace or name not in ("contains", "startswith", "endswith"):
                raise QueryError(f"The function '{node.func.full_name()}' is not supported.")
            if len(node.args) != 2:
                raise QueryError(f"The function '{name}' takes two arguments.")
            column, literal = node.args
            if not isinstance(column, ast.Identifier) or self._column(column.name).name != "string":
                raise QueryError(f"The first argument of '{name}' must be a string property.")
            if not isinstance(literal, ast.String):
                raise QueryError(f"The second argument of '{name}' must be a string literal.")
            return
        if isinstance(node, ast.Identifier) and self._column(node.name).name == "bool":
            return  # `$filter=creditonhold` is a valid boolean expression
        if isinstance(node, ast.Boolean):
            return
        raise QueryError(f"The $filter expression must be a boolean expression, got {type(node).__name__}.")

    def _fields_of(self, node: ast._Node) -> set[str]:
        if isinstance(node, ast.Identifier):
            return {node.name}
        found: set[str] = set()
        for value in vars(node).values():
            if isinstance(value, ast._Node):
                found |= self._fields_of(value)
            elif isinstance(value, list):
                for item in value:
                    if isinstance(item, ast._Node):
                        found |= self._fields_of(item)
        return found

    def _check_or_fields(self, node: ast._Node) -> None:
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
            if len(self._fields_of(node)) > 1:
                raise QueryError(
                    "An error occurred while processing this request. The 'OR' operator is not supported on distinct fields on an OData filter."
                )
        for value in vars(node).values():
            if isinstance(value, ast._Node):
                self._check_or_fields(value)

    # -- evaluation --------------------------------------------------------------------------
    def _value(self, node: ast._Node, row: dict[str, Any]) -> tuple[str | None, Any]:
        if isinstance(node, ast.Identifier):
            return self.columns[node.name].name, row.get(node.name)
        if isinstance(node, ast.Null):
            return None, None
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            kind, value = self._value(node.operand, row)
            return kind, -value
        for literal, name in _LITERAL_TYPES.items():
            if isinstance(node, literal):
                if name in ("int", "decimal"):
                    return name, Decimal(node.val)
                if name == "bool":
                    return name, node.val.lower() == "true"
                return name, node.val
        raise AssertionError(node)

    def _comparable(self, kind: str | None, value: Any, other_kind: str | None) -> Any:
        if value is None:
            return None
        kind = kind or other_kind
        if kind == "guid" or (other_kind == "guid" and kind == "string"):
            return normalize_guid(value) if is_guid(value) else str(value).lower()
        if kind == "string":
            return value.casefold() if self.options.case_insensitive else value
        if kind in ("int", "decimal"):
            return value if isinstance(value, Decimal) else Decimal(str(value))
        if kind in ("datetime", "date"):
            if kind == "date" or (isinstance(value, str) and len(value) == 10):
                date = dt.date.fromisoformat(value[:10])
                if "datetime" in (kind, other_kind):
                    return dt.datetime(date.year, date.month, date.day, tzinfo=dt.timezone.utc)
                return date
            return parse_datetime(value)
        return value

    def _compare(self, op: ast._Comparator, left: Any, right: Any) -> bool:
        if isinstance(op, ast.Eq):
            return left == right
        if isinstance(op, ast.NotEq):
            return left != right
        if left is None or right is None:
            return False
        if isinstance(op, ast.Lt):
            return left < right
        if isinstance(op, ast.LtE):
            return left <= right
        if isinstance(op, ast.Gt):
            return left > right
        if isinstance(op, ast.GtE):
            return left >= right
        raise AssertionError(op)

    def _eval(self, node: ast._Node, row: dict[str, Any]) -> bool | None:
        if isinstance(node, ast.BoolOp):
            left = self._eval(node.left, row)
            if isinstance(node.op, ast.And):
                return bool(left) and bool(self._eval(node.right, row))
            return bool(left) or bool(self._eval(node.right, row))
        if isinstance(node, ast.UnaryOp):
            return not self._eval(node.operand, row)
        if isinstance(node, ast.Boolean):
            return node.val.lower() == "true"
        if isinstance(node, ast.Identifier):
            return row.get(node.name) is True
        if isinstance(node, ast.Call):
            return self._call(node, row)
        if isinstance(node, ast.Compare):
            lkind, lvalue = self._value(node.left, row)
            if isinstance(node.comparator, ast.In):
                left = self._comparable(lkind, lvalue, None)
                for item in node.right.val:
                    rkind, rvalue = self._value(item, row)
                    if left is not None and left == self._comparable(rkind, rvalue, lkind):
                        return True
                return False
            rkind, rvalue = self._value(node.right, row)
            left = self._comparable(lkind, lvalue, rkind)
            right = self._comparable(rkind, rvalue, lkind)
            if isinstance(node.left, ast.Null) or isinstance(node.right, ast.Null):
                if isinstance(node.comparator, ast.Eq):
                    return left is None and right is None
                if isinstance(node.comparator, ast.NotEq):
                    return (left is None) != (right is None)
                return False
            if self.options.sql_nulls and (left is None or right is None):
                return False  # SQL: a comparison with a NULL column is never true
            return self._compare(node.comparator, left, right)
        raise AssertionError(node)

    def _call(self, node: ast.Call, row: dict[str, Any]) -> bool:
        name = node.func.name.lower()
        column, literal = node.args
        value = row.get(column.name)
        if value is None:
            return False
        pattern = literal.val
        flags = re.IGNORECASE if self.options.case_insensitive else 0
        body = _like_to_regex(pattern) if self.options.sql_wildcards else re.escape(pattern)
        if name == "contains":
            regex = body
        elif name == "startswith":
            regex = "^" + body
        else:
            regex = body + "$"
        return re.search(regex, value, flags | re.DOTALL) is not None


def _like_to_regex(pattern: str) -> str:
    """Translate SQL LIKE wildcards (%, _, [set], [^set]) into a regular expression."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "%":
            out.append(".*")
        elif char == "_":
            out.append(".")
        elif char == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(char))
            else:
                inner = pattern[i + 1 : end]
                negate = inner.startswith("^")
                if negate:
                    inner = inner[1:]
                inner = inner.replace("\\", "\\\\")
                out.append(f"[{'^' if negate else ''}{inner}]")
                i = end
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


# --------------------------------------------------------------------------------------------
# $select and $orderby
# --------------------------------------------------------------------------------------------


def parse_select(text: str | None, columns: dict[str, ColumnType], type_name: str) -> list[str] | None:
    if text is None:
        return None
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise QueryError("The $select query option is empty.")
    for name in names:
        if name == "*":
            return None
        if name not in columns:
            raise QueryError(f"Could not find a property named '{name}' on type '{type_name}'.")
    return names


@dataclass(frozen=True)
class OrderItem:
    column: str
    descending: bool


def parse_orderby(text: str | None, columns: dict[str, ColumnType], type_name: str) -> list[OrderItem]:
    if text is None:
        return []
    items: list[OrderItem] = []
    for part in text.split(","):
        words = part.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise QueryError(f"Syntax error in $orderby '{text}'.")
        if words[0] not in columns:
            raise QueryError(f"Could not find a property named '{words[0]}' on type '{type_name}'.")
        items.append(OrderItem(words[0], len(words) == 2 and words[1].lower() == "desc"))
    return items


def sort_value(ctype: ColumnType, value: Any, case_insensitive: bool) -> list[Any]:
    """A JSON-serialisable, order-preserving representation of one column value.

    ``[0, None]`` for null sorts before every ``[1, value]``, which is how SQL Server orders
    NULL (first ascending, last descending).
    """
    if value is None:
        return [0, None]
    name = ctype.name
    if name == "string":
        return [1, value.casefold() if case_insensitive else value]
    if name in ("int", "decimal"):
        return [1, float(value)]
    if name == "bool":
        return [1, int(value)]
    if name == "datetime":
        return [1, parse_datetime(value).strftime("%Y-%m-%dT%H:%M:%S.%f")]
    if name == "guid":
        return [1, str(value).lower()]
    return [1, str(value)]


def row_sort_key(row: dict[str, Any], order: list[OrderItem], columns: dict[str, ColumnType], key: str, ci: bool) -> list[Any]:
    parts = [sort_value(columns[item.column], row.get(item.column), ci) for item in order]
    parts.append([1, str(row[key]).lower()])  # the primary key makes the order total
    return parts


def compare_sort_keys(a: list[Any], b: list[Any], descending: list[bool]) -> int:
    for index, (left, right) in enumerate(zip(a, b)):
        if left == right:
            continue
        if left[0] != right[0]:
            result = -1 if left[0] < right[0] else 1
        else:
            result = -1 if left[1] < right[1] else 1
        desc = descending[index] if index < len(descending) else False
        return -result if desc else result
    return 0


def sort_rows(rows: list[dict[str, Any]], order: list[OrderItem], columns: dict[str, ColumnType], key: str, ci: bool) -> list[tuple[list[Any], dict[str, Any]]]:
    descending = [item.descending for item in order]
    keyed = [(row_sort_key(row, order, columns, key, ci), row) for row in rows]
    keyed.sort(key=functools.cmp_to_key(lambda x, y: compare_sort_keys(x[0], y[0], descending)))
    return keyed
