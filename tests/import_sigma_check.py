"""Import Sigma rules with whatever pySigma the running interpreter has, print the result.

Run by tests/test_import_sigma_pysigma1.py in the main venv (pySigma 2.x) and in
.venv-pysigma1 (pySigma 1.5.x). The old venv holds only pySigma: siemc's other dependencies are
read from the main venv's site-packages, put *after* the old venv's own, so that `sigma` is
1.5's. Usage: ``python tests/import_sigma_check.py MAIN_SITE_PACKAGES REPO PATH...``.
"""

from __future__ import annotations

import json
import sys
from importlib.metadata import version


def main(site: str, repo: str, paths: list[str]) -> None:
    sys.path.append(site)
    sys.path.insert(0, repo)
    from compiler.importers.sigma import import_sigma

    res = import_sigma(paths)
    print(
        json.dumps(
            {
                "pysigma": version("pysigma"),
                "files": res.files(),
                "refused": sorted(
                    (r.construct, r.diagnostic.line, r.diagnostic.col) for r in res.refused
                ),
                "invalid": [d.message for d in res.invalid],
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
