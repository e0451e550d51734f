"""Vendor the web UI's front-end files from the npm registry at the versions the manifest pins.

`make assets` runs `python -m tools.vendor_assets`: for each package in PACKAGES it takes the
tarball with `npm pack name@version`, copies the listed files next to the manifest and records each
file's sha256 there. `--check` only verifies the files on disk against the manifest (no network);
a test runs it, so a hand-edited or missing file fails the suite.
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
from dataclasses import dataclass
from pathlib import Path

VENDOR = Path(__file__).resolve().parent.parent / "src/messaging_whatsapp/web/static/vendor"
MANIFEST = VENDOR / "manifest.json"


@dataclass(frozen=True)
class Package:
    """An npm package and the files of it the engine serves: path in the package -> vendored name."""

    name: str
    version: str
    files: dict[str, str]


PACKAGES = [
    Package("htmx.org", "2.0.11", {"dist/htmx.min.js": "htmx.min.js"}),
    Package("alpinejs", "3.17.4", {"dist/cdn.min.js": "alpine.min.js"}),
    Package(
        "swagger-ui-dist",
        "5.35.0",
        {
            "swagger-ui-bundle.js": "swagger-ui-bundle.js",
            "swagger-ui.css": "swagger-ui.css",
        },
    ),
    Package("redoc", "2.5.4", {"bundles/redoc.standalone.js": "redoc.standalone.js"}),
    Package(
        "uplot", "1.6.32", {"dist/uPlot.iife.min.js": "uplot.min.js", "dist/uPlot.min.css": "uplot.min.css"}
    ),
]


def sha256(path: Path) -> str:
    """The file's sha256, hex."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def refresh() -> None:
    """Download each pinned package with npm, copy its files here and rewrite the manifest."""
    entries = []
    with tempfile.TemporaryDirectory() as scratch:
        for package in PACKAGES:
            spec = f"{package.name}@{package.version}"
            tarball = (
                subprocess.run(
                    ["npm", "pack", "--silent", spec], cwd=scratch, check=True, capture_output=True, text=True
                )
                .stdout.strip()
                .splitlines()[-1]
            )
            unpacked = Path(scratch, package.name.replace("/", "_"))
            with tarfile.open(Path(scratch, tarball)) as archive:
                archive.extractall(unpacked, filter="data")
            # The licence as the package declares it (not every package ships a LICENSE file).
            declared = json.loads((unpacked / "package/package.json").read_text()).get("license")
            for source, target in package.files.items():
                shutil.copyfile(unpacked / "package" / source, VENDOR / target)
                entries.append(
                    {
                        "name": package.name,
                        "version": package.version,
                        "license": declared,
                        "source": source,
                        "file": target,
                        "sha256": sha256(VENDOR / target),
                    }
                )
    MANIFEST.write_text(json.dumps(entries, indent=2) + "\n")


def check() -> list[str]:
    """What on disk disagrees with the manifest (empty when all files match)."""
    problems = []
    for entry in json.loads(MANIFEST.read_text()):
        path = VENDOR / entry["file"]
        if not path.is_file():
            problems.append(f"{entry['file']}: missing")
        elif sha256(path) != entry["sha256"]:
            problems.append(f"{entry['file']}: sha256 differs from the manifest")
    return problems


def main() -> None:
    """`--check` verifies; without it, refresh from npm."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="verify the files against the manifest")
    if parser.parse_args().check:
        problems = check()
        print("\n".join(problems) or "vendored assets match the manifest")
        sys.exit(1 if problems else 0)
    refresh()
    print(f"vendored {len(PACKAGES)} packages into {VENDOR}")


if __name__ == "__main__":
    main()
