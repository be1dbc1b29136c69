"""Entry point of `nlmm-studio`."""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    # The Qt studio is being built (see the project's issues); until it lands, say so plainly.
    print("NLMM Studio's window is not built yet. The engine works today: try `nlmm --help`.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
