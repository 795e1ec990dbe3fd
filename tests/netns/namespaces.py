"""Two network namespaces joined by a veth pair: their names and addresses."""

from __future__ import annotations

from dataclasses import dataclass

ROV_ADDRESS = "10.231.0.1"
CONSOLE_ADDRESS = "10.231.0.2"


@dataclass(frozen=True)
class Namespaces:
    """``rov`` and ``console``: namespace names; ``rov_link``: rov's end of the veth."""

    rov: str
    console: str
    rov_link: str

    @staticmethod
    def exec(namespace: str) -> list[str]:
        """The prefix that runs a command inside ``namespace``."""
        return ["ip", "netns", "exec", namespace]
