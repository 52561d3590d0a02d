"""`python -m router COMMAND ...`: one module per command under router/commands.

Each command module has `configure(parser)` and `run(args) -> int`. Library errors become a
message on stderr and a non-zero exit here, in one place.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from router.errors import ConfigError, RouterError

# name -> module; modules are imported only to build the parser, and import nothing heavy.
COMMANDS: dict[str, str] = {
    "route": "router.commands.route",
    "score": "router.commands.score",
    "train": "router.commands.train",
    "distill": "router.commands.distill",
    "evaluate": "router.commands.evaluate",
    "import-routerbench": "router.commands.import_routerbench",
    "serve-local": "router.commands.serve_local",
    "collect": "router.commands.collect",
    "serve": "router.commands.serve",
    "audit": "router.commands.audit",
    "litellm-config": "router.commands.litellm_config",
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Every command's parser, or with `only` just that one: a cold `route` then imports no other
    command's dependencies (serve-local's configure alone pulls in fastapi, ~2 s)."""
    parser = argparse.ArgumentParser(prog="python -m router", description=__import__("router").__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"prefill-router {__import__('router').__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name in COMMANDS.items():
        if only is not None and name != only:
            continue
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0],
                           description=module.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
        module.configure(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv[0] if argv and argv[0] in COMMANDS else None).parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RouterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (IsADirectoryError, NotADirectoryError, PermissionError, FileExistsError) as exc:
        # the last net under the early checks (router/files.py check_output_*): a path the OS refused
        print(f"error: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `... | head`: the reader left. Point stdout at devnull so the interpreter's final flush
        # does not raise a second time and print a traceback.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
