"""Dataset adapters: one module per dataset, reading its official release layout into a manifest of clips.

Each module defines `build(root: Path, **options) -> Manifest` (a list of `Clip` with a `report` dict), where
`root` is the dataset folder found by `TaskSpec.locate`. Adapters only read metadata and list folders; they never
decode audio (except the Speech Commands background-noise files, whose lengths define the `_silence_` windows).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from hares.data.adapters._util import Manifest

__all__ = ["Manifest", "load_adapter"]


def load_adapter(name: str) -> ModuleType:
    """The adapter module `hares.data.adapters.<name>`."""
    return importlib.import_module(f"hares.data.adapters.{name}")
