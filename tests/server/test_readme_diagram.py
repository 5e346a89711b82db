"""The README's state diagram is generated from the TurnMachine's table; keep them in sync."""
from pathlib import Path

from server.turn import diagram

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_shows_the_table_as_it_is() -> None:
    assert f"```mermaid\n{diagram().strip()}\n```" in README.read_text(encoding="utf-8")
