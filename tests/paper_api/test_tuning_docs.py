"""docs/tuning.md prints the table of tunable parameters: it must equal trading/tuning_table.py."""

from __future__ import annotations

from pathlib import Path

from trading.tuning_table import ALL_TUNABLES

DOC = Path(__file__).resolve().parents[2] / "docs" / "tuning.md"


def test_the_docs_table_is_the_code_table():
    rows = [line for line in DOC.read_text().splitlines() if line.startswith("| `")]
    expected = [f"| `{t.path}` | {t.label} | {t.tier.name} | {t.minimum:g} | {t.maximum:g} | {t.step:g} | "
                f"{t.largest_change} | {t.cooldown_s / 3600:g} h | {t.riskier} |" for t in ALL_TUNABLES.values()]
    assert rows == expected
