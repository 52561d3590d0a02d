"""Where the project's data folders live (configs/, assets/), found once.

The package sits in the repository (or an editable install of it); `PREFILL_ROUTER_HOME` points
elsewhere, e.g. a container that copies configs/ and assets/ to their own folder.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(os.environ.get("PREFILL_ROUTER_HOME") or Path(__file__).resolve().parent.parent).resolve()
CONFIG_DIR = PROJECT_ROOT / "configs"
ASSETS_DIR = PROJECT_ROOT / "assets"
