"""The reference evaluator: the executable specification of what an analytic means."""

from compiler.evaluator.engine import evaluate, make_events, merge_events
from compiler.evaluator.model import Alert, Event

__all__ = ["Alert", "Event", "evaluate", "make_events", "merge_events"]
