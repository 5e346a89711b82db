import subprocess
import sys

from server import __version__


def test_version_flag() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "server.cli", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"agentlocator {__version__}"
