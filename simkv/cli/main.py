"""Entry point of the ``simkv`` CLI.

Each command group lives in its own module ``simkv/cli/cmd_<name>.py`` exposing
``register(app)``; they are discovered here, so adding a command never edits this file.
Bad input anywhere (``InputError`` or a usage error) becomes one line on stderr and exit
status 2, never a traceback.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys

import typer

try:  # typer >= 0.20 vendors click as typer._click
    from typer._click import exceptions as click_exc
except ImportError:  # pragma: no cover - older typer uses click itself
    from click import exceptions as click_exc

from simkv import guard
from simkv.errors import InputError
from simkv.units import parse_size
from simkv.validate import harden

EXIT_BAD_INPUT = 2
MAX_MEMORY = "--max-memory"


def build_app() -> typer.Typer:
    app = typer.Typer(name="simkv", no_args_is_help=True, add_completion=False,
                      pretty_exceptions_enable=False, rich_markup_mode=None,
                      help="Size and price a persistent KV cache for LLM serving.")
    import simkv.cli as pkg

    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("cmd_"):
            importlib.import_module(f"simkv.cli.{info.name}").register(app)
    app.callback()(_root)
    return app


def _root(
    max_memory: str | None = typer.Option(
        None, MAX_MEMORY, metavar="SIZE",
        help=f"Refuse work estimated to need more memory than this (default: 80% of the "
             f"available memory; also ${guard.ENV_VAR}). Accepted before or after the command."),
) -> None:
    """Size and price a persistent KV cache for LLM serving."""


def split_max_memory(argv: list[str]) -> tuple[list[str], int | None]:
    """``argv`` without ``--max-memory SIZE`` (anywhere), and the bound in bytes (or None).

    Taken out before click parses, so the one bound applies to every command of ``simkv``
    and ``simkv-harness`` wherever the user puts it; ``$SIMKV_MAX_MEMORY`` is the fallback.
    """
    rest: list[str] = []
    text: str | None = os.environ.get(guard.ENV_VAR) or None
    where = f"${guard.ENV_VAR}" if text is not None else MAX_MEMORY
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest.extend(argv[i:])
            break
        if arg == MAX_MEMORY or arg.startswith(MAX_MEMORY + "="):
            if "=" in arg:
                text = arg.split("=", 1)[1]
            elif i + 1 < len(argv):
                text, i = argv[i + 1], i + 1
            else:
                raise InputError("needs a size, e.g. 8GiB", where=MAX_MEMORY)
            where = MAX_MEMORY
        else:
            rest.append(arg)
        i += 1
    if text is None:
        return rest, None
    size = parse_size(text, where=where)
    if size <= 0:
        raise InputError(f"must be a size > 0, got {text!r}", where=where)
    return rest, size


def fail(message: str) -> None:
    """Print one error line and exit with status 2."""
    sys.stderr.write(f"simkv: error: {' '.join(str(message).split())}\n")
    raise SystemExit(EXIT_BAD_INPUT)


def run(app: typer.Typer, argv: list[str] | None = None, prog: str = "simkv") -> int:
    """Run a typer app turning bad input into one clean line (shared with simkv-harness)."""
    try:
        args, max_bytes = split_max_memory(list(sys.argv[1:] if argv is None else argv))
        command = harden(typer.main.get_command(app))
        with guard.limit(max_bytes):
            rv = command(args=args, prog_name=prog, standalone_mode=False)
    except InputError as exc:
        fail(str(exc))
    except click_exc.NoArgsIsHelpError as exc:
        sys.stdout.write(exc.ctx.get_help() + "\n" if exc.ctx else "")
        return 0
    except click_exc.UsageError as exc:
        where = f" (in '{exc.ctx.command_path}')" if exc.ctx else ""
        fail(f"{exc.format_message()}{where}")
    except click_exc.ClickException as exc:
        fail(exc.format_message())
    except typer.Abort:
        sys.stderr.write("simkv: aborted\n")
        return 130
    except typer.Exit as exc:
        return int(getattr(exc, "exit_code", 0) or 0)
    except KeyboardInterrupt:
        sys.stderr.write("simkv: interrupted\n")
        return 130
    except BrokenPipeError:
        return 0
    return int(rv) if isinstance(rv, int) else 0


def main(argv: list[str] | None = None) -> None:
    raise SystemExit(run(build_app(), argv))


if __name__ == "__main__":
    main()
