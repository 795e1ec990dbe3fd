"""Where the repository and its test data are: the real CAN captures in tests/data/can."""

from __future__ import annotations

from pathlib import Path

#: the repository's top folder
REPO = Path(__file__).resolve().parents[2]
#: real CAN captures and a DBC from the canboat project (their README and Apache-2.0 notice)
CAN_CAPTURES = REPO / "tests" / "data" / "can"
