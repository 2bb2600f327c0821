"""Vendor uPlot from the npm registry: ``python scripts/update_uplot.py [VERSION]``.

Runs ``npm pack uplot@VERSION`` (default: the latest) in a temporary folder, unpacks the
tarball and copies ``dist/uPlot.iife.min.js``, ``dist/uPlot.min.css`` and ``LICENSE`` into
``bridge/k6mcp_bridge/reports/vendor/uplot/``, then rewrites ``VERSION`` (the version and the
sha256 of each file, which ``tests/reports/test_vendor.py`` checks). Needs npm; run it by
hand when upgrading. Nothing at build, test or run time reaches the network.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

VENDOR = Path(__file__).resolve().parents[1] / "bridge" / "k6mcp_bridge" / "reports" / "vendor"
TARGET = VENDOR / "uplot"
FILES = {
    "package/dist/uPlot.iife.min.js": "uPlot.iife.min.js",
    "package/dist/uPlot.min.css": "uPlot.min.css",
    "package/LICENSE": "LICENSE",
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str]) -> int:
    spec = f"uplot@{argv[0]}" if argv else "uplot"
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            ["npm", "pack", spec, "--json"], cwd=tmp, check=True, capture_output=True, text=True
        )
        tarball = Path(tmp) / json.loads(out.stdout)[0]["filename"]
        with tarfile.open(tarball) as archive:
            version = json.load(archive.extractfile("package/package.json"))["version"]  # type: ignore[arg-type]
            for member, name in FILES.items():
                data = archive.extractfile(member)
                assert data is not None, member
                (TARGET / name).write_bytes(data.read())
    lines = [f"uplot {version}", "source: npm registry, package uplot (dist/ of the tarball)"]
    lines += [f"sha256 {sha256(TARGET / name)}  {name}" for name in sorted(FILES.values())]
    (TARGET / "VERSION").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"vendored uplot {version} into {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
