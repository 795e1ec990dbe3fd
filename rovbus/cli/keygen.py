"""``rovbus keygen``: write a CURVE key pair (and optionally an HMAC key) for the system file."""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path
from typing import Any

from rovbus.cli.options import parser_defaults
from rovbus.exitcodes import EXIT_FAILURE, EXIT_OK, EXIT_USAGE

EPILOG = """\
examples:
  rovbus keygen tether --dir /etc/rovbus/keys --hmac    # server pair + the system's HMAC key
  rovbus keygen operator --dir /etc/rovbus/keys         # a client pair; list operator.key
                                                        # under allowed_clients

Writes DIR/NAME.key (the public key, to hand out) and DIR/NAME.key_secret (public and
secret key, mode 0600), in pyzmq's certificate format; NAME is a plain file name (no
'/', not '..'). --hmac writes a random signing key (mode 0600; DIR/hmac.key unless a
file is given) for [security] key_file. Existing files are never replaced without
--force. Exit status: 0 written, 1 a file exists or cannot be written, 2 a NAME that is
not a plain file name.
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "keygen",
        help="write a CURVE key pair (and an HMAC key) for the system file",
        description="Write a CURVE key pair for a forwarder (server) or a client, and "
        "optionally the system's HMAC signing key.",
        epilog=EPILOG,
        **parser_defaults(),
    )
    p.add_argument("name", help="the key pair's name: NAME.key and NAME.key_secret")
    p.add_argument("--dir", "-d", default=".", metavar="DIR", help="where to write (default .)")
    p.add_argument(
        "--hmac",
        nargs="?",
        const="",
        default=None,
        metavar="FILE",
        help="also write an HMAC key file (default DIR/hmac.key)",
    )
    p.add_argument("--force", action="store_true", help="replace existing key files")


def write_hmac_key(path: Path, *, overwrite: bool = False) -> Path:
    """A random 256-bit key as 64 hex digits (Jupyter's form of a key), mode 0600."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    fd = os.open(path, flags, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (secrets.token_hex(32) + "\n").encode())
    finally:
        os.close(fd)
    return path


def run(args: argparse.Namespace) -> int:
    from rovbus.transport.curve import key_paths, write_keypair

    directory = Path(args.dir)
    try:
        key_paths(directory, args.name)
    except ValueError as exc:
        print(f"rovbus keygen: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        hmac_path = None
        if args.hmac is not None:
            hmac_path = Path(args.hmac) if args.hmac else directory / "hmac.key"
            if hmac_path.exists() and not args.force:
                raise FileExistsError(f"{hmac_path} exists; not replacing a key (use --force)")
        public, secret = write_keypair(directory, args.name, overwrite=args.force)
        print(f"public key:  {public}")
        print(f"secret key:  {secret}  (mode 0600)")
        if hmac_path is not None:
            write_hmac_key(hmac_path, overwrite=args.force)
            print(f"HMAC key:    {hmac_path}  (mode 0600)")
    except OSError as exc:
        print(f"rovbus keygen: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK
