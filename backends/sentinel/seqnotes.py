"""What the kql backend declares about its ordered sequences (the approximation details), and
why the two-step join form is the evaluator's pairing."""

SEQ_DETAIL = (
    "steps are paired by joins: each event pairs with the earliest later event of the next "
    "step with equal keys within maxspan, and each later event keeps only the latest earlier "
    "one; the evaluator's EQL state machine (one pending partial per key and step, events "
    "consumed by completed sequences) can pair differently when instances of one key overlap, "
    "and events with equal timestamps have no input order in KQL"
)
# Two steps without until, scalar keys: the evaluator pairs a second-step event b with the latest
# first-step event a of its keys before it when no second-step event lies between them and
# b.ts - a.ts <= maxspan (docs/semantics.md, Sequence, rules 3-5). The joins pair a with its
# earliest later b within maxspan, f(a), and keep the latest a of each b: (a, b) with f(a) = b has
# no b between them, and any a' between them would have f(a') = b and be later; conversely the
# evaluator's pair has f(a) = b and no later a before b. The two agree but for the input order of
# one millisecond, which KQL does not have.
SEQ_TIES = (
    "equal timestamps: KQL has no input order, so a first-step and a second-step event with "
    "equal keys at one millisecond (also one event in both streams) pair here whatever their "
    "order, and of tied events of one step either may be the pair; the evaluator follows input "
    "order. Equal to the evaluator when no first-step and second-step events with equal keys "
    "share a millisecond (the joins pair each event with the earliest later event of the next "
    "step and keep the latest earlier one, which is the EQL state machine's pairing for two steps)"
)

PID_CHILD = (
    "the child's row names its parent (MDE's Initiating* columns: the parent's own process "
    "record), so a child pairs only with its real parent; the evaluator pairs on (host, PID) and "
    "also pairs a first-step process that exited within maxspan with a child of another process "
    "that reused its PID, which alerts there and not here. Equal when no PID is reused on a host "
    "within maxspan (docs/semantics.md, Process identity: parent and child)"
)
