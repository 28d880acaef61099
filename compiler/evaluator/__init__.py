"""The reference evaluator: the executable specification of what an analytic means."""

from compiler.evaluator.engine import Evaluation, evaluate, make_events, merge_events, to_event
from compiler.evaluator.model import Alert, Event

__all__ = [
    "Alert",
    "Evaluation",
    "Event",
    "evaluate",
    "make_events",
    "merge_events",
    "to_event",
]
