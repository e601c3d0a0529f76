"""Entry point of the ``simkv`` CLI.

Each command group lives in its own module ``simkv/cli/cmd_<name>.py`` exposing
``register(app)``; they are discovered here, so adding a command never edits this file.
Bad input anywhere (``InputError`` or a usage error) becomes one line on stderr and exit
status 2, never a traceback.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import click
import typer

from simkv.errors import InputError

EXIT_BAD_INPUT = 2


def build_app() -> typer.Typer:
    app = typer.Typer(name="simkv", no_args_is_help=True, add_completion=False,
                      pretty_exceptions_enable=False, rich_markup_mode=None,
                      help="Size and price a persistent KV cache for LLM serving.")
    import simkv.cli as pkg

    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("cmd_"):
            importlib.import_module(f"simkv.cli.{info.name}").register(app)
    return app


def fail(message: str) -> None:
    """Print one error line and exit with status 2."""
    sys.stderr.write(f"simkv: error: {' '.join(str(message).split())}\n")
    raise SystemExit(EXIT_BAD_INPUT)


def run(app: typer.Typer, argv: list[str] | None = None, prog: str = "simkv") -> int:
    """Run a typer app turning bad input into one clean line (shared with simkv-harness)."""
    try:
        rv = app(args=argv, prog_name=prog, standalone_mode=False)
    except InputError as exc:
        fail(str(exc))
    except click.exceptions.NoArgsIsHelpError as exc:
        sys.stdout.write(exc.ctx.get_help() + "\n" if exc.ctx else "")
        return 0
    except click.exceptions.UsageError as exc:
        where = f" (in '{exc.ctx.command_path}')" if exc.ctx else ""
        fail(f"{exc.format_message()}{where}")
    except click.exceptions.Abort:
        sys.stderr.write("simkv: aborted\n")
        return 130
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
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
