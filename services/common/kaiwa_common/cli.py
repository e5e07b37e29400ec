"""`kaiwa token --tenant T --role R --sub S` prints a development token."""

from __future__ import annotations

import argparse
import sys

from .auth import ROLES, mint_token
from .config import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kaiwa")
    commands = parser.add_subparsers(dest="command", required=True)
    token = commands.add_parser("token", help="mint a token for local development")
    token.add_argument("--tenant", required=True)
    token.add_argument("--role", required=True, choices=ROLES)
    token.add_argument("--sub", required=True, help="agent id, visitor id or service name")
    token.add_argument("--ttl", type=int, default=86400, help="seconds (default 1 day)")
    args = parser.parse_args(argv)
    settings = Settings()
    if settings.uses_dev_secret:
        print("warning: signing with the development secret; set KAIWA_JWT_SECRET", file=sys.stderr)
    print(mint_token(settings, args.tenant, args.role, args.sub, args.ttl))
    return 0


if __name__ == "__main__":
    sys.exit(main())
