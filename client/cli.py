"""`rpc-api`: call the API from the shell, compatible with kallithea-api.

Only option parsing and printing live here; talking to the server is `client.api.ApiClient`,
the saved settings are `client.config`, the argument syntax is `client.args`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import IO, Any, NoReturn

import click
from click.shell_completion import CompletionItem

from client import args as cli_args
from client import config, output
from client.api import AUTH_MODES, BODY, DEFAULT_TIMEOUT, ApiClient, api_url, safe_url, version
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
  rpc-api --auth=bearer get_repos
  rpc-api --user=alice --format=json token --scope=repository:tools:pull | jq -r .token

\b
`token` is no API method: it exchanges the key for a short-lived token at /_admin/token
(rpcserver only; needs the key's username: --user, RPC_API_USER or the config file).

\b
key:value sends a string (as kallithea-api does); key:=json sends any JSON value.
Host, key, username: --apihost/--apikey/--user, else RPC_API_HOST/RPC_API_KEY/RPC_API_USER,
else the config file.
Exit codes: 0 success, 1 the server answered an error, 2 usage error,
3 connection error or timeout, 4 Invalid API key.
"""


def _complete_method(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    items = [
        CompletionItem(m.name, help=f"{m.summary} (scope: {m.scope})" if m.scope else m.summary)
        for m in METHODS
        if m.name.startswith(incomplete)
    ]
    if TOKEN.startswith(incomplete):
        items.append(CompletionItem(TOKEN, help="Exchange the key for a short-lived token."))
    return items


#: What `--scope` offers; an object scope is completed up to its name.
SCOPE_HINTS = (
    ("read", "only methods that change nothing"),
    ("write", "all the user may do except admin-only methods"),
    ("admin", "all the user may do"),
    ("repository:", "repository:<name or glob>:pull[,push]"),
    ("repo_group:", "repo_group:<path>:pull[,push]"),
)


def _complete_scope(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    return [CompletionItem(s, help=h) for s, h in SCOPE_HINTS if s.startswith(incomplete)]


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


#: The word in METHOD's place that asks for a token exchange instead of a call.
TOKEN = "token"  # noqa: S105 (a command, not a secret)


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
    "--auth",
    type=click.Choice(AUTH_MODES),
    default=BODY,
    show_default=True,
    envvar="RPC_API_AUTH",
    show_envvar=True,
    help="Where the key goes: in the request body (every server), or as an Authorization "
    "header, Bearer or Basic with --user (rpcserver).",
)
@click.option(
    "--user",
    "username",
    envvar="RPC_API_USER",
    show_envvar=True,
    metavar="NAME",
    help="The key's username, for --auth=basic and token (saved by --save-config).",
)
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    metavar="SCOPE",
    shell_complete=_complete_scope,
    help="With token: a scope to ask for (repeatable): read, write, admin, "
    "repository:<name>:pull[,push], repo_group:<path>:pull[,push].",
)
@click.option(
    "--service",
    metavar="NAME",
    help="With token: the server's service name (default: the server's own).",
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
    help="Save --apihost and --apikey (and --user) in the config file (mode 0600) and exit.",
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
    auth: str,
    username: str | None,
    scopes: tuple[str, ...],
    service: str | None,
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
        _save_config(ctx, path, apihost, apikey, profile, username)
    if not method:
        raise click.UsageError("Please specify method name", ctx)
    if (scopes or service is not None) and method != TOKEN:
        raise click.UsageError(f"--scope and --service go with {TOKEN}, not with a method", ctx)
    try:
        if method == TOKEN:
            if args or args_file:
                raise click.UsageError(f"{TOKEN} takes --scope and --service, not arguments",
                                       ctx)
            call_args: dict[str, Any] = {}
        else:
            call_args = _method_args(ctx, args_file, args)
        api = _client(ctx, path, apihost, apikey, profile, timeout, auth, username,
                      need_user=method == TOKEN)
        with api:
            if method == TOKEN:
                result = _answered(ctx, "a token", partial(api.token, scopes, service))
            else:
                if output_format == output.PRETTY:
                    _say(f"Calling method {method} => {safe_url(api.url)}")
                result = _answered(ctx, method, partial(api.call, method, **call_args))
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
    auth: str = BODY,
    username: str | None = None,
    *,
    need_user: bool = False,
) -> ApiClient:
    try:
        settings = config.resolve(apihost, apikey, path, profile, username)
    except config.ConfigError as exc:
        raise click.UsageError(str(exc), ctx) from None
    if not settings.apihost or not settings.apikey:
        raise click.UsageError(
            "missing API host or key: pass --apihost and --apikey, set RPC_API_HOST and "
            "RPC_API_KEY, or save them with --save-config",
            ctx,
        )
    if (need_user or auth == "basic") and not settings.username:
        what = f"{TOKEN}" if need_user else "--auth=basic"
        raise click.UsageError(
            f"{what} needs the key's username: pass --user, set RPC_API_USER, or save it "
            "with --save-config --user",
            ctx,
        )
    if settings.key_from_file and not config.is_private(path):
        _say(f"warning: {path} is readable by others; run: chmod 600 {path}")
    try:
        return ApiClient(settings.apihost, settings.apikey, timeout=timeout, auth=auth,
                         username=settings.username)
    except ValueError as exc:
        raise click.UsageError(str(exc), ctx) from None


def _answered(ctx: click.Context, waiting_for: str, ask: Callable[[], Any]) -> Any:
    """What `ask` returns, or exit with the code that says what went wrong."""
    try:
        with Progress(sys.stderr, f"waiting for {waiting_for}"):
            return ask()
    except InvalidApiKey as exc:
        _fail(ctx, ExitCode.INVALID_API_KEY, f"ERROR: {exc.message}")
    except ApiError as exc:
        _fail(ctx, ExitCode.API_ERROR, f"ERROR: {exc.message}")
    except TransportError as exc:
        _fail(ctx, ExitCode.CONNECTION, f"rpc-api: {exc}")


def _save_config(
    ctx: click.Context,
    path: Path,
    apihost: str | None,
    apikey: str | None,
    profile: str | None,
    username: str | None = None,
) -> NoReturn:
    if not apihost or not apikey:
        raise click.UsageError("--save-config requires --apikey and --apihost", ctx)
    try:
        api_url(apihost)  # refuse a URL that could never work before saving it
        existed = config.save(path, apihost.strip(), apikey, profile, username)
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
