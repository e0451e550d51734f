"""bench/live.py writes its own section of docs/benchmarks.md and leaves every other one alone."""

from __future__ import annotations

from pathlib import Path

from bench.live import SECTION, record


def test_the_live_section_is_appended_once_then_replaced_in_place(tmp_path: Path) -> None:
    document = tmp_path / "benchmarks.md"
    document.write_text("# Benchmarks\n\n## Ingest\n\nfigures\n\n## Analysis\n\nprose\n")

    record(document, f"{SECTION}\n\nfirst run\n")
    record(document, f"{SECTION}\n\nsecond run\n")
    assert document.read_text() == (
        f"# Benchmarks\n\n## Ingest\n\nfigures\n\n## Analysis\n\nprose\n\n{SECTION}\n\nsecond run\n"
    )

    # Moved up by hand, it is replaced where it stands, and what follows it stays.
    document.write_text(f"# Benchmarks\n\n{SECTION}\n\nold\n\n## Analysis\n\nprose\n")
    record(document, f"{SECTION}\n\nnew\n")
    assert document.read_text() == f"# Benchmarks\n\n{SECTION}\n\nnew\n\n## Analysis\n\nprose\n"
