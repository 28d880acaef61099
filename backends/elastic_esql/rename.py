"""Field renaming of filters and expressions: a stream of a multi-stream query reads some
fields from the columns its pipeline wrote (``siemc_<stream>.<field>``), not the event's."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from compiler import ir


def pred(p: ir.Predicate, cols: Mapping[str, str]) -> ir.Predicate:
    if not cols:
        return p
    if isinstance(p, ir.And):
        return ir.And(tuple(pred(x, cols) for x in p.items), span=p.span)
    if isinstance(p, ir.Or):
        return ir.Or(tuple(pred(x, cols) for x in p.items), span=p.span)
    if isinstance(p, ir.Not):
        return ir.Not(pred(p.item, cols), span=p.span)
    if isinstance(p, ir.InLookup):
        match = tuple((c, cols.get(f, f)) for c, f in p.match)
        return dataclasses.replace(p, match=match)
    return dataclasses.replace(p, field=cols.get(p.field, p.field))


def expr(e: ir.Expr, cols: Mapping[str, str]) -> ir.Expr:
    if not cols:
        return e
    if isinstance(e, ir.FieldRef):
        return dataclasses.replace(e, name=cols.get(e.name, e.name)) if e.step is None else e
    if isinstance(e, ir.BinOp):
        return dataclasses.replace(e, left=expr(e.left, cols), right=expr(e.right, cols))
    if isinstance(e, ir.UnaryOp):
        return dataclasses.replace(e, operand=expr(e.operand, cols))
    if isinstance(e, ir.Call):
        return dataclasses.replace(e, args=tuple(expr(a, cols) for a in e.args))
    return e


def pred_fields(p: ir.Predicate) -> set[str]:
    return ir.predicate_fields(p)


def expr_fields(e: ir.Expr) -> set[str]:
    return ir.field_names(e, steps=False)
