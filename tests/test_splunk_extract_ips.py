"""extract_ips() in SPL (backends/splunk/ips.py), run by the SPL interpreter, equals the
evaluator's on spellings that pin each rule and on random text over the characters the rules
read (fixed seed: deterministic)."""

from __future__ import annotations

import random

from backends.splunk import ips
from compiler.evaluator.values import extract_ips
from tests.interpreters import spl_interp

PINNED = [
    "type:  5 github.map.fastly.net;::ffff:151.101.208.133;",
    "2606:50C0:8000:0:0:0:0:154",
    "2001:0DB8:0000:0000:0000:0000:0000:0001",
    "a1.2.3.4",
    "::1.2.3.4",
    "1::",
    "::",
    "0::0",
    "1:2:3:4:5:6:7:8",
    "1:0:0:2:0:0:0:3",
    "fe80:0:0:1:0:0:0:1",
    "fe80::1%eth0",
    "std::string",
    "g12::1",
    "1::2g",
    "12345::1",
    "1.2.3.4::5",
    "01.2.3.4",
    "1.2.3.256",
    "::ffff:102:304",
    "0:0:0:0:0:ffff:c000:205",
    "0::ffff:1.2.3.4",
    "1.2.3.4.5",
    "[::1]",
    "<1.2.3.4>",
    "::1..",
    "1:2:3:4:5:6:7::",
    "::2:3:4:5:6:7:8",
    "1:2:3:4:5:6:7:8:9",
    "1:2:3:4:5:6:1.2.3.4",
    "\u06611.2.3.4",
    "x 10.0.0.1, 10.0.0.1 ::1 0:0:0:0:0:0:0:1",
]
_ALPHABET = [*"0123456789abcdefABCDEF::::....gxz_ ;[]<>", "ffff", "::", "255", "0", "00", "1.2.3.4"]


def _random(n: int) -> list[str]:
    rnd = random.Random(20261206)
    return ["".join(rnd.choice(_ALPHABET) for _ in range(rnd.randint(1, 14))) for _ in range(n)]


def test_extract_ips_in_spl_equals_the_evaluator() -> None:
    texts = PINNED + _random(400)
    query = "search index=main\n| " + "\n| ".join(ips.commands("q", "out", None))
    events = [{"_time": i, "index": "main", "q": t} for i, t in enumerate(texts)]
    rows = spl_interp.execute(query, events, {}, 10**6)
    got = {int(r["_time"]): r.get("out") for r in rows}
    for i, t in enumerate(texts):
        v = got[i]
        spl = [] if v is None else v if isinstance(v, list) else [v]
        assert spl == extract_ips(t), t
