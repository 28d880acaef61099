"""Expressions (``derive``, ``compute``, ``having``) as DuckDB SQL yielding JSON values.

An expression's value may be a string, a number, a boolean, a list or null, like an event
field, so every rendered expression yields JSON (SQL NULL for null) and reuses the macros of
the filters: a derived field is one more JSON column. Arithmetic is DOUBLE arithmetic (the
evaluator keeps Python ints; the two agree below 2**53, docs/duckdb.md).
"""

from __future__ import annotations

from collections.abc import Callable

from backends.base import Context
from backends.duckdb.functions import CALLS
from backends.duckdb.sql import col, jlit
from compiler import ir

_CMP = {"==": "eq", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"}


class ExprRenderer:
    """``measure`` renders a measure or computed value by name (aggregates only)."""

    def __init__(
        self,
        ctx: Context,
        field: Callable[[ir.FieldRef], str] | None = None,
        measure: Callable[[ir.MeasureRef], str] | None = None,
    ) -> None:
        self.ctx = ctx
        self.field = field or self._column
        self.measure = measure

    def _column(self, ref: ir.FieldRef) -> str:
        if ref.step is not None:
            raise self.ctx.not_implemented("step field reference", ref.span)
        self.ctx.field(ref.name, ref.span)
        return col(ref.name)

    def render(self, e: ir.Expr) -> str:
        if isinstance(e, ir.Literal_):
            return jlit(e.value)
        if isinstance(e, ir.FieldRef):
            return self.field(e)
        if isinstance(e, ir.MeasureRef):
            if self.measure is None:
                raise self.ctx.not_implemented("measure reference outside an aggregate", e.span)
            return self.measure(e)
        if isinstance(e, ir.UnaryOp):
            if e.op == "not":
                return f"to_json({self.truth(e)})"
            return f"siemc_jnum(-siemc_num1({self.render(e.operand)}))"
        if isinstance(e, ir.BinOp):
            return self.binop(e)
        return self.call(e)

    def truth(self, e: ir.Expr) -> str:
        """``e`` as a SQL boolean (truthiness), without a detour through JSON for logic and
        comparisons: macros repeat their arguments, so nesting them would multiply the text."""
        if isinstance(e, ir.UnaryOp) and e.op == "not":
            return f"NOT {self.truth(e.operand)}"
        if isinstance(e, ir.BinOp) and e.op in ("and", "or"):
            return f"({self.truth(e.left)} {e.op.upper()} {self.truth(e.right)})"
        if isinstance(e, ir.BinOp) and e.op in _CMP:
            a, b = self.render(e.left), self.render(e.right)
            return f"siemc_cmp_{_CMP[e.op]}({a}, {b})"
        return f"siemc_truthy({self.render(e)})"

    def binop(self, e: ir.BinOp) -> str:
        if e.op in _CMP or e.op in ("and", "or"):
            return f"to_json({self.truth(e)})"
        a, b = self.render(e.left), self.render(e.right)
        if e.op == "/":
            return (
                f"CASE WHEN siemc_num1({b}) <> 0 "
                f"THEN siemc_jnum(siemc_num1({a}) / siemc_num1({b})) END"
            )
        return f"siemc_jnum(siemc_num1({a}) {e.op} siemc_num1({b}))"

    def call(self, e: ir.Call) -> str:
        args = [self.render(a) for a in e.args]
        if e.func in CALLS:
            # the evaluator's own function (the Public Suffix List package, the IP scanner),
            # registered in DuckDB by siemc (backends/duckdb/functions.py)
            self.ctx.note(
                f"{e.func}() calls {CALLS[e.func]}, a Python function siemc registers on its "
                "DuckDB connection (siemc run, siemc test)"
            )
            return f"{CALLS[e.func]}({args[0]}::VARCHAR)::JSON"
        if e.func in ("lower", "upper", "basename"):
            return f"siemc_{e.func}({args[0]})"
        if e.func == "abs":
            return f"siemc_jnum(abs(siemc_num1({args[0]})))"
        if e.func in ("max", "min"):
            fn = "greatest" if e.func == "max" else "least"
            return f"siemc_jnum({fn}({', '.join(f'siemc_num1({a})' for a in args)}))"
        # coalesce: the first argument that is not missing, whole
        whens = " ".join(f"WHEN NOT siemc_missing({a}) THEN {a}" for a in args)
        return f"CASE {whens} END"
