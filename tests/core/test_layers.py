"""Which package may import which: telemetry is the floor (it imports none of ours), and no
provider, brain or store imports the server."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OURS = {"native", "telemetry", "server", "speech", "dialog", "leads"}
MAY_NOT = {
    "telemetry": OURS - {"telemetry"},
    "native": OURS - {"native"},
    "speech": {"server"},
    "dialog": {"server"},
    "leads": {"server"},
}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_no_package_imports_what_it_may_not() -> None:
    wrong = []
    for package, banned in MAY_NOT.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            bad = imports(path) & banned
            if bad:
                wrong.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert not wrong, wrong
