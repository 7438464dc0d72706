"""`rpc-api`: call the API from the shell, compatible with kallithea-api.

Only option parsing and printing live here; talking to the server is `client.api.ApiClient`,
the saved settings are `client.config`, the argument syntax is `client.args`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import IO, Any, NoReturn

import click
from click.shell_completion import CompletionItem

from client import args as cli_args
from client import config, output
from client.api import DEFAULT_TIMEOUT, ApiClient, api_url, safe_url, version
from client.errors import ApiError, InvalidApiKey, TransportError
from client.exitcodes import ExitCode
from client.methods import BY_NAME, METHODS
from client.progress import Progress

EPILOG = """\b
Examples:
  rpc-api --apihost=http://127.0.0.1:5000 --apikey=KEY --save-config
  rpc-api get_repo repoid:myrepo
  rpc-api create_user username:alice email:alice@example.com active:=false
  rpc-api --format=json get_users | jq -r '.[].username'
  echo '{"repoid": "mirrors/linux"}' | rpc-api --args-file - pull
  rpc-api --profile staging --apihost=https://staging.example.com --apikey=KEY --save-config
  rpc-api --profile staging get_server_info

\b
key:value sends a string (as kallithea-api does); key:=json sends any JSON value.
Host and key: --apihost/--apikey, else RPC_API_HOST/RPC_API_KEY, else the config file.
Exit codes: 0 success, 1 the server answered an error, 2 usage error,
3 connection error or timeout, 4 Invalid API key.
"""


def _complete_method(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    return [
        CompletionItem(m.name, help=m.summary) for m in METHODS if m.name.startswith(incomplete)
    ]


def _complete_args(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    method = BY_NAME.get(ctx.params.get("method") or "")
    if method is None:
        return []
    given = {token.partition(":")[0] for token in ctx.params.get("args") or ()}
    return [
        CompletionItem(f"{name}:", help="required" if name in method.required else "optional")
        for name in (*method.required, *method.optional)
        if name not in given and name.startswith(incomplete)
    ]


def _show_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(f"rpc-api {version()}")
        ctx.exit(ExitCode.OK)


@click.command(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EPILOG,
)
@click.option(
    "--apihost",
    envvar="RPC_API_HOST",
    show_envvar=True,
    metavar="URL",
    help="Server base URL, e.g. http://127.0.0.1:5000 (or the URL ending in /_admin/api).",
)
@click.option(
    "--apikey",
    envvar="RPC_API_KEY",
    show_envvar=True,
    metavar="KEY",
    help="API key. Prefer the variable or the config file: options show up in `ps`.",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Config file (default: ~/.config/kallithea, shared with kallithea-api).",
)
@click.option(
    "--save-config",
    is_flag=True,
    help="Save --apihost and --apikey in the config file (mode 0600) and exit.",
)
@click.option(
    "--profile",
    envvar="RPC_API_PROFILE",
    show_envvar=True,
    metavar="NAME",
    help="Use (or with --save-config, save) the named profile of the config file.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(output.FORMATS),
    default=output.PRETTY,
    show_default=True,
    help="json: only the result, one line, for jq and scripts; pretty: for people.",
)
@click.option(
    "--args-file",
    type=click.File("r", encoding="utf-8"),
    metavar="FILE",
    help="Read the method's args as one JSON object from FILE (- for stdin); "
    "key:value arguments override its keys.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_TIMEOUT,
    show_default=True,
    metavar="SECONDS",
    help="Give up waiting for the answer after this long.",
)
@click.option(
    "--list-methods",
    is_flag=True,
    help="List the methods of rpcserver's API (another server may lack some or have "
    "more) and exit.",
)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_show_version,
    help="Show the version and exit.",
)
@click.argument("method", required=False, shell_complete=_complete_method)
@click.argument(
    "args", nargs=-1, metavar="[key:value | key:=json]...", shell_complete=_complete_args
)
@click.pass_context
def main(
    ctx: click.Context,
    apihost: str | None,
    apikey: str | None,
    config_path: Path | None,
    save_config: bool,
    profile: str | None,
    output_format: str,
    args_file: IO[str] | None,
    timeout: float,
    list_methods: bool,
    method: str | None,
    args: tuple[str, ...],
) -> None:
    """Call METHOD of a Kallithea-compatible JSON-RPC API with the given arguments."""
    path = config_path or config.default_path()
    if list_methods:
        _list_methods(ctx, method, output_format)
    if save_config:
        _save_config(ctx, path, apihost, apikey, profile)
    if not method:
        raise click.UsageError("Please specify method name", ctx)
    try:
        call_args = _method_args(ctx, args_file, args)
        api = _client(ctx, path, apihost, apikey, profile, timeout)
        with api:
            if output_format == output.PRETTY:
                _say(f"Calling method {method} => {safe_url(api.url)}")
            result = _call(ctx, api, method, call_args)
    except KeyboardInterrupt:
        # click would say "Aborted!" and exit 1, which scripts read as a server error.
        _fail(ctx, ExitCode.INTERRUPTED, "rpc-api: interrupted (a call already sent may complete)")
    try:
        click.echo(output.render(result, output_format))
        clone = output.clone_url(api.url, method, result)
        if output_format == output.PRETTY and clone is not None:
            click.echo(f"clone URL: {clone}")
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader left early (`| head`): end quietly, as other Unix tools do, not with a
        # traceback; and keep Python's exit-time flush from failing again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        ctx.exit(ExitCode.BROKEN_PIPE)


def _method_args(
    ctx: click.Context, args_file: IO[str] | None, pairs: tuple[str, ...]
) -> dict[str, Any]:
    try:
        call_args = cli_args.load_args_file(args_file, args_file.name) if args_file else {}
        call_args.update(cli_args.parse_pairs(pairs))
    except cli_args.ArgsError as exc:
        raise click.UsageError(str(exc), ctx) from None
    return call_args


def _client(
    ctx: click.Context,
    path: Path,
    apihost: str | None,
    apikey: str | None,
    profile: str | None,
    timeout: float,
) -> ApiClient:
    try:
        settings = config.resolve(apihost, apikey, path, profile)
    except config.ConfigError as exc:
        raise click.UsageError(str(exc), ctx) from None
    if not settings.apihost or not settings.apikey:
        raise click.UsageError(
            "missing API host or key: pass --apihost and --apikey, set RPC_API_HOST and "
            "RPC_API_KEY, or save them with --save-config",
            ctx,
        )
    if settings.key_from_file and not config.is_private(path):
        _say(f"warning: {path} is readable by others; run: chmod 600 {path}")
    try:
        return ApiClient(settings.apihost, settings.apikey, timeout=timeout)
    except ValueError as exc:
        raise click.UsageError(str(exc), ctx) from None


def _call(ctx: click.Context, api: ApiClient, method: str, call_args: dict[str, Any]) -> Any:
    """The result, or exit with the code that says what went wrong."""
    try:
        with Progress(sys.stderr, f"waiting for {method}"):
            return api.call(method, **call_args)
    except InvalidApiKey as exc:
        _fail(ctx, ExitCode.INVALID_API_KEY, f"ERROR: {exc.message}")
    except ApiError as exc:
        _fail(ctx, ExitCode.API_ERROR, f"ERROR: {exc.message}")
    except TransportError as exc:
        _fail(ctx, ExitCode.CONNECTION, f"rpc-api: {exc}")


def _save_config(
    ctx: click.Context, path: Path, apihost: str | None, apikey: str | None, profile: str | None
) -> NoReturn:
    if not apihost or not apikey:
        raise click.UsageError("--save-config requires --apikey and --apihost", ctx)
    try:
        api_url(apihost)  # refuse a URL that could never work before saving it
        existed = config.save(path, apihost.strip(), apikey, profile)
    except (ValueError, config.ConfigError) as exc:
        raise click.UsageError(str(exc), ctx) from None
    where = f" (profile {profile!r})" if profile else ""
    # Never echo the key: terminals are recorded, screens are shared.
    _say(f"{'Updated' if existed else 'Created new'} config in {path}{where}")
    ctx.exit(ExitCode.OK)


def _list_methods(ctx: click.Context, method: str | None, output_format: str) -> NoReturn:
    methods = METHODS
    if method:
        if method not in BY_NAME:
            raise click.UsageError(f"{method!r} is not a method of rpcserver's API", ctx)
        methods = (BY_NAME[method],)
    click.echo(output.render_methods(methods, output_format))
    ctx.exit(ExitCode.OK)


def _say(message: str) -> None:
    click.echo(message, err=True)


def _fail(ctx: click.Context, code: ExitCode, message: str) -> NoReturn:
    _say(message)
    ctx.exit(code)


if __name__ == "__main__":
    main(prog_name="rpc-api")
