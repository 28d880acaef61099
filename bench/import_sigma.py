"""Import the SigmaHQ corpus and compile what was imported to every target.

    .venv/bin/python bench/import_sigma.py [CORPUS] [--targets splunk,eql,...] [--stride N]

CORPUS defaults to ../shared/data/sigmahq beside the repository. Prints the share of rules
imported, the top refusal reasons (the construct each refusal names), and per target the share
of imported analytics that compile (``compiler.build.compile_pair``, every profile of the
target, ``allow_approximate=True``) with the top compile refusal codes. ``--stride N`` reads
every N-th rule file only. The last line is one JSON object with every number.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `compiler`, `backends` importable
    sys.path.insert(0, str(ROOT))

from backends import TARGETS  # noqa: E402
from compiler.build import compile_pair  # noqa: E402
from compiler.importers.sigma import import_sigma, rule_files  # noqa: E402
from compiler.lower import load_text  # noqa: E402


def default_corpus() -> Path:
    for base in (ROOT.parent, ROOT.parent.parent):
        if (base / "shared" / "data" / "sigmahq").is_dir():
            return base / "shared" / "data" / "sigmahq"
    return ROOT.parent / "shared" / "data" / "sigmahq"


def _reason(res: object) -> str:
    diags = getattr(res, "diagnostics", None) or []
    if not diags:
        return "no artifact"
    d = diags[0]
    # the message up to its first detail: names and values vary from rule to rule
    return f"{d.code} {d.message.split(':')[0][:70]}"


def main(argv: list[str] | None = None) -> dict[str, object]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", nargs="?", type=Path, default=default_corpus())
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument("--stride", type=int, default=1)
    ap.add_argument("--top", type=int, default=8)
    args = ap.parse_args(argv)
    files = rule_files([args.corpus])[:: args.stride]
    if not files:
        ap.error(f"no Sigma rules under {args.corpus}")
    t0 = time.perf_counter()
    res = import_sigma(files)
    took = time.perf_counter() - t0
    total = len(res.imported) + len(res.refused) + len(res.invalid) + len(res.consumed)
    done = len(res.imported) + len(res.consumed)
    print(f"Sigma rules: {total} in {len(files)} files ({took:.1f}s to import)")
    print(
        f"imported:    {done} ({done / total:.1%}); refused {len(res.refused)}, "
        f"invalid {len(res.invalid)}"
    )
    reasons = Counter(r.construct for r in res.refused)
    for construct, n in reasons.most_common(args.top):
        print(f"  refused {n:5d}  {construct}")
    loaded = []
    with tempfile.TemporaryDirectory(prefix="siemc-bench-import-") as tmp:
        root = Path(tmp)
        for rel, text in res.lookups.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text, encoding="utf-8")
        # lookups are read while loading: the analytics no longer need the folder afterwards
        loaded = [load_text(str(root / imp.file), imp.text, root) for imp in res.imported]
    compiled: dict[str, dict[str, object]] = {}
    for target in args.targets.split(","):
        ok = 0
        why: Counter[str] = Counter()
        for lo in loaded:
            pair = compile_pair(lo, target, profile=None, allow_approximate=True)
            if pair.artifact is not None:
                ok += 1
            else:
                why[_reason(pair)] += 1
        share = ok / len(loaded) if loaded else 0.0
        print(f"{target:<7} compiles {ok:5d}/{len(loaded)} imported ({share:.1%})")
        for r, n in why.most_common(args.top):
            print(f"  {n:5d}  {r}")
        compiled[target] = {"compiled": ok, "share": round(share, 4), "refusals": dict(why)}
    summary: dict[str, object] = {
        "rules": total,
        "imported": done,
        "share_imported": round(done / total, 4),
        "refusals": dict(sorted(reasons.items())),
        "targets": compiled,
    }
    print(json.dumps(summary, sort_keys=True))
    return summary


if __name__ == "__main__":
    main()
