"""Refresh the vendored front-end assets in app/static/vendor/ from the npm registry.

The pages load nothing from another origin: every script and stylesheet is a file of the app,
committed with its package's license and version. This script is how they are upgraded:

    python scripts/vendor_assets.py            # fetch the versions in PACKAGES below
    python scripts/vendor_assets.py --check    # exit 1 when a vendored file differs from its package

It runs ``npm pack NAME@VERSION`` (the ordinary npm client, so the registry and proxy settings
of the machine apply) in a temporary folder, and copies the few files each page needs, the
package's license, and a line in ``app/static/vendor/MANIFEST.json`` (name, version, files,
sha256 of each). Change a version below, run it, look at the pages, commit.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "app" / "static" / "vendor"

#: package -> (version, folder under vendor/, {file in the package: name in the folder})
PACKAGES: dict[str, tuple[str, str, dict[str, str]]] = {
    "htmx.org": ("4.0.1", "htmx", {"dist/htmx.min.js": "htmx.min.js"}),
    "uplot": (
        "1.6.32",
        "uplot",
        {"dist/uPlot.iife.min.js": "uPlot.iife.min.js", "dist/uPlot.min.css": "uPlot.min.css"},
    ),
    "axe-core": ("4.14.1", "axe-core", {"axe.min.js": "axe.min.js"}),
    "swagger-ui-dist": (
        "5.35.0",
        "swagger-ui",
        {
            "swagger-ui-bundle.js": "swagger-ui-bundle.js",
            "swagger-ui-standalone-preset.js": "swagger-ui-standalone-preset.js",
            "swagger-ui.css": "swagger-ui.css",
            "favicon-32x32.png": "favicon-32x32.png",
        },
    ),
}
LICENSE_NAMES = ("LICENSE", "LICENSE.md", "LICENSE.txt", "license", "NOTICE")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _pack(name: str, version: str, work: Path) -> Path:
    """The package's unpacked folder (``npm pack`` fetches the tarball the registry serves)."""
    out = (
        subprocess.run(
            ["npm", "pack", f"{name}@{version}", "--silent"], cwd=work, check=True, capture_output=True, text=True
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    target = work / name.replace("/", "_")
    with tarfile.open(work / out) as tar:
        tar.extractall(target, filter="data")
    return target / "package"


def vendor(check: bool = False) -> int:
    manifest: dict[str, dict[str, object]] = {}
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (version, folder, files) in PACKAGES.items():
            package = _pack(name, version, Path(tmp))
            dest = VENDOR / folder
            licenses = [n for n in LICENSE_NAMES if (package / n).exists()]
            if not licenses:
                problems.append(f"{name}@{version}: no license file in the package")
            copies = {**files, **{n: n for n in licenses}}
            hashes = {}
            for source, target in copies.items():
                if check:
                    if not (dest / target).exists() or _sha256(dest / target) != _sha256(package / source):
                        problems.append(f"{folder}/{target} differs from {name}@{version}")
                else:
                    dest.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(package / source, dest / target)
                hashes[target] = _sha256(package / source)
            manifest[name] = {"version": version, "folder": folder, "files": hashes}
            print(f"{name}@{version} -> app/static/vendor/{folder}/ ({len(copies)} files)")
    if not check:
        (VENDOR / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare the vendored files with the packages")
    return vendor(check=parser.parse_args().check)


if __name__ == "__main__":
    raise SystemExit(main())
