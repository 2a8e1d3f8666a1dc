"""``lexigram-llm keys``: store API keys once, in a file only the user can read.

    lexigram-llm keys set openai        # asks for the key without echoing it
    echo "$KEY" | lexigram-llm keys set openai
    lexigram-llm keys list              # which providers have a stored key (never the keys)
    lexigram-llm keys path              # where they are stored

A stored key is used when neither the config nor the provider's environment variable has one.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from lexigram.ai.llm import _userfiles
from lexigram.ai.llm.exceptions import ConfigurationError

__all__ = ["add_keys_parser", "run_keys"]


def add_keys_parser(commands: Any) -> None:
    """Add ``keys`` and its subcommands to the CLI's subparsers."""
    keys = commands.add_parser(
        "keys",
        help="store API keys in a user-only file",
        description="Store API keys in a file only you can read (used after the environment).",
    )
    actions = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    store = actions.add_parser(
        "set",
        help="store the key of PROVIDER (typed without echo, or read from stdin)",
        description="Store the key of PROVIDER. On a terminal it is typed without echo; "
        "otherwise it is read from stdin.",
    )
    store.add_argument("provider", metavar="PROVIDER", help="a registered provider name")
    actions.add_parser("list", help="list the providers that have a stored key")
    actions.add_parser("path", help="print the key file's path")


def run_keys(args: argparse.Namespace) -> int:
    """Run ``keys set|list|path``; returns the exit status."""
    if args.keys_command == "path":
        print(_userfiles.keys_file())
        return 0
    if args.keys_command == "list":
        for name in sorted(_userfiles.read_stored_keys()):
            print(name)
        return 0
    return _set(args.provider)


def _set(provider: str) -> int:
    from lexigram.ai.llm.registry import default_registry

    if provider not in default_registry:
        raise ConfigurationError(
            f"unknown provider {provider!r}; 'lexigram-llm providers' lists them: "
            + ", ".join(default_registry.names())
        )
    provider = default_registry.canonical_name(provider)
    # On a terminal the key is typed without echo; piped, it is read as it comes.
    typed = sys.stdin.isatty()
    key = (getpass.getpass(f"Key for {provider}: ") if typed else sys.stdin.read()).strip()
    if not key:
        raise ConfigurationError("no key given; nothing was stored")
    if any(ch.isspace() for ch in key):
        raise ConfigurationError("a key holds no whitespace; nothing was stored")
    path = _userfiles.store_key(provider, key)
    sys.stderr.write(f"Stored the key for {provider} in {path}\n")
    return 0
