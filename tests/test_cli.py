"""The command line entry points."""

from __future__ import annotations

import subprocess
import sys

from hares import __version__
from hares.cli import main


def test_help_and_version(capsys) -> None:
    assert main([]) == 0
    assert "hares" in capsys.readouterr().out


def test_python_dash_m() -> None:
    out = subprocess.run([sys.executable, "-m", "hares", "--version"], capture_output=True, text=True, check=True)
    assert __version__ in out.stdout
