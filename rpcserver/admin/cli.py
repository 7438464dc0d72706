"""``rpcserver``: the admin command. It only parses options and calls the server's modules."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from rpcserver.admin.local import as_admin
from rpcserver.core.config import Config, ConfigError
from rpcserver.db import migrations
from rpcserver.db.database import Database
from rpcserver.domain import bootstrap, clone_uri_at_rest, secret_keys
from rpcserver.domain.auth import expiry, issue_key_for
from rpcserver.domain.scopes import FULL, ScopeError
from rpcserver.domain.scopes import parse as parse_scopes

config_option = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), default=None,
    help="Config file (default: $RPCSERVER_CONFIG, else built-in defaults).")


def _load(ctx: click.Context, config_path: str | None) -> Config:
    path = config_path or ctx.find_root().params.get("config_path")
    try:
        return Config.load(path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@config_option
@click.version_option(package_name="rpcserver")
def main(config_path: str | None) -> None:
    """Run and administer an rpcserver instance."""


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--admin-username", default="admin", show_default=True)
@click.option("--admin-email", default="admin@localhost", show_default=True)
@click.option("--key-description", default="created by rpcserver init", show_default=True,
              help="Description of the admin's first API key.")
@config_option
@click.pass_context
def init(ctx: click.Context, directory: Path, admin_username: str, admin_email: str,
         key_description: str, config_path: str | None) -> None:
    """Create an instance in DIRECTORY: config file, database, repository root and the first
    admin, whose API key is printed once."""
    try:
        path = bootstrap.write_config(directory)
    except bootstrap.AlreadyInitialised as exc:
        raise click.ClickException(f"{exc}; nothing changed") from None
    config = _load(ctx, str(path))
    try:
        key = bootstrap.init_database(config, admin_username, admin_email, key_description)
    except bootstrap.AlreadyInitialised as exc:
        path.unlink()
        raise click.ClickException(str(exc)) from None
    except clone_uri_at_rest.Unavailable as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Initialised {directory} (config: {path}).", err=True)
    click.echo(f"Admin user `{admin_username}` API key (shown only this once):", err=True)
    click.echo(key)
    _print_example(config, key)


def _print_example(config: Config, key: str) -> None:
    host = config.bind
    click.echo("\nTry it:", err=True)
    click.echo(f"  curl -s http://{host}/_admin/api -d "
               f"'{{\"id\": 1, \"api_key\": \"{key}\", \"method\": \"get_user\", "
               f"\"args\": {{}}}}'\n", err=True)


@main.command()
@click.option("--bind", default=None, help="HOST:PORT (default from config: 127.0.0.1:5000).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Worker processes (default from config).")
@click.option("--reload", is_flag=True, help="Development server that reloads on changes.")
@click.option("--access-log", is_flag=True, help="Log every request to stderr.")
@config_option
@click.pass_context
def serve(ctx: click.Context, bind: str | None, workers: int | None, reload: bool,
          access_log: bool, config_path: str | None) -> None:
    """Serve the API (gunicorn workers, each reading requests in an event loop)."""
    config = _load(ctx, config_path)
    _require_current_schema(config)
    _require_git(config)
    _prepare_secrets(config)
    bind = bind or config.bind
    from rpcserver.web.serve import run_development, run_gunicorn

    click.echo(f"git clone URLs: {config.public_base(bind)}/<repository>", err=True)
    if reload:
        run_development(config, bind)
    else:
        run_gunicorn(config, bind, workers or config.workers, access_log=access_log)


def _require_git(config: Config) -> None:
    """Repositories are kept through the git command line: refuse to start without it.
    Without Mercurial (a dependency, so an install that left it out) the server still keeps
    and serves git, and says once that hg repositories need it."""
    from rpcserver.vcs import Git, GitMissing
    from rpcserver.vcs.hg.command import HgMissing, locate

    try:
        Git.find(config.git_timeout)
    except GitMissing as exc:
        raise click.ClickException(str(exc)) from None
    try:
        locate()
    except HgMissing as exc:
        click.echo(f"warning: hg repositories cannot be used: {exc}; git repositories are "
                   "served as usual", err=True)


def _require_current_schema(config: Config) -> None:
    db = Database.connect(config.database_url)
    try:
        current = migrations.current_revision(db.engine)
    finally:
        db.dispose()
    if current != migrations.head_revision():
        raise click.ClickException(
            f"the database schema is at {current or 'nothing'}, not "
            f"{migrations.head_revision()}: run `rpcserver db upgrade` (or `rpcserver init`)")


def _prepare_secrets(config: Config) -> None:
    """The secret key file exists (made now if not) and no password is stored in plain text."""
    database = Database.connect(config.database_url)
    try:
        created, sealed = clone_uri_at_rest.prepare(config, database)
    except clone_uri_at_rest.Unavailable as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        database.dispose()
    if created:
        click.echo(f"Created the secret key file {config.secret_key_file}: keep it private, "
                   "and back it up apart from the database.", err=True)
    if sealed:
        click.echo(f"Encrypted {sealed} clone_uri password(s) stored in plain text.", err=True)


@main.group()
def db() -> None:
    """Database schema commands."""


@db.command()
@config_option
@click.pass_context
def upgrade(ctx: click.Context, config_path: str | None) -> None:
    """Create or upgrade the schema to the newest version."""
    config = _load(ctx, config_path)
    database = Database.connect(config.database_url)
    try:
        migrations.upgrade(database.engine)
        with database.transaction(write=True) as session:
            bootstrap.seed_default_user(session)
    finally:
        database.dispose()
    click.echo(f"database schema at {migrations.head_revision()}", err=True)
    _prepare_secrets(config)


@main.command("create-user")
@click.argument("username")
@click.option("--email", required=True)
@click.option("--password", default=None, help="Prompted for when --password-prompt is given.")
@click.option("--password-prompt", is_flag=True, help="Ask for the password on the terminal.")
@click.option("--admin", is_flag=True, help="Make the user a global admin.")
@config_option
@click.pass_context
def create_user(ctx: click.Context, username: str, email: str, password: str | None,
                password_prompt: bool, admin: bool, config_path: str | None) -> None:
    """Create a user (the same rules as the create_user API method)."""
    if password_prompt:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    args: dict[str, Any] = {"username": username, "email": email, "admin": admin}
    if password:
        args["password"] = password
    with as_admin(_load(ctx, config_path)) as (dispatcher, credential):
        result = dispatcher.call(credential, "create_user", args)
    click.echo(result["msg"], err=True)
    click.echo(result["user"]["user_id"])


@main.command("refresh-repo")
@click.argument("repository")
@config_option
@click.pass_context
def refresh_repo(ctx: click.Context, repository: str, config_path: str | None) -> None:
    """Re-read what the server caches about REPOSITORY (a name or an id) from disk, as the
    invalidate_cache API method does: for a post-receive hook of pushes made straight into
    the repository root (docs/push-rules.md), with no API key to keep in the hook."""
    with as_admin(_load(ctx, config_path)) as (dispatcher, credential):
        result = dispatcher.call(credential, "invalidate_cache", {"repoid": repository})
    click.echo(result["msg"], err=True)


@main.command("create-api-key")
@click.argument("username")
@click.option("--description", default="", help="Shown in key listings; never secret.")
@click.option("--scope", "scopes", multiple=True, metavar="SCOPE",
              help="Limit the key (repeatable): read, write, admin, "
              "repository:<name>:pull[,push], repo_group:<path>:pull[,push]. "
              "Default: the user's full rights.")
@click.option("--expires", default=None, metavar="SECONDS|DATE",
              help="Seconds from now, or an ISO 8601 date (UTC unless it says otherwise).")
@click.option("--expires-in-days", type=click.IntRange(min=1), default=None,
              help="The older form of --expires.")
@click.option("--rotate", is_flag=True,
              help="Revoke this user's earlier keys with the same description.")
@click.option("--with-example", is_flag=True, help="Also print a curl example on stderr.")
@config_option
@click.pass_context
def create_api_key(ctx: click.Context, username: str, description: str,
                   scopes: tuple[str, ...], expires: str | None, expires_in_days: int | None,
                   rotate: bool, with_example: bool, config_path: str | None) -> None:
    """Create an API key for USERNAME and print only the key on stdout. Its lifetime is
    bounded by max_key_lifetime, as for create_api_key."""
    config = _load(ctx, config_path)
    if expires is not None and expires_in_days is not None:
        raise click.UsageError("give --expires or --expires-in-days, not both")
    asked: int | str | None = expires
    if expires is not None and expires.strip().isdigit():
        asked = int(expires)
    elif expires_in_days is not None:
        asked = expires_in_days * 24 * 3600
    try:
        expires_on = expiry(asked, config.max_key_lifetime)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--expires") from None
    try:
        limits = parse_scopes(list(scopes)) if scopes else FULL
    except ScopeError as exc:
        raise click.BadParameter(str(exc), param_hint="--scope") from None
    with as_admin(config) as (dispatcher, credential):
        key = dispatcher.run(credential, "create-api-key", lambda call: issue_key_for(
            call.session, username, description=description, expires_on=expires_on,
            rotate=rotate, scopes=limits))
    if with_example:
        click.echo(f"API key for `{username}`:", err=True)
    click.echo(key)
    if with_example:
        _print_example(config, key)


@main.command("recover-admin")
@click.argument("username")
@click.option("--email", default=None, help="Create USERNAME with this email if it does not "
              "exist.")
@config_option
@click.pass_context
def recover_admin(ctx: click.Context, username: str, email: str | None,
                  config_path: str | None) -> None:
    """Make USERNAME an active admin and print a new API key for it: the way back in when no
    admin can log in (this command alone needs no active admin)."""
    config = _load(ctx, config_path)
    _require_current_schema(config)
    database = Database.connect(config.database_url)
    try:
        with database.transaction(write=True) as session:
            key = bootstrap.recover_admin(session, username, email)
    except bootstrap.RecoveryRefused as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        database.dispose()
    click.echo(f"`{username}` is an active admin; a new API key (shown only this once):",
               err=True)
    click.echo(key)


@main.command("rotate-secret-key")
@click.option("--new-key", is_flag=True,
              help="First put a newly generated key at the top of the secret key file.")
@click.option("--drop-old-keys", is_flag=True,
              help="Then keep only the first key in the file (not if anything failed).")
@config_option
@click.pass_context
def rotate_secret_key(ctx: click.Context, new_key: bool, drop_old_keys: bool,
                      config_path: str | None) -> None:
    """Encrypt every stored clone_uri password again with the first key of the secret key
    file (docs/configuration.md, "Rotating the secret key")."""
    config = _load(ctx, config_path)
    _require_current_schema(config)
    path = config.secret_key_file
    try:
        if new_key:
            old = secret_keys.read(path).keys if Path(path).exists() else ()
            secret_keys.write(path, [secret_keys.new_key(), *old])
            click.echo(f"Added a new first key to {path}.", err=True)
        keys = secret_keys.read(path)
    except (secret_keys.KeyFileError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    database = Database.connect(config.database_url)
    try:
        with database.transaction(write=True) as session:
            result = clone_uri_at_rest.rotate(session, keys)
        clone_uri_at_rest.compact(database.engine)
    finally:
        database.dispose()
    click.echo(f"Encrypted {result.reencrypted + result.sealed} stored clone_uri password(s) "
               f"with the first key of {path}.", err=True)
    if result.undecryptable:
        raise click.ClickException(
            f"{len(result.undecryptable)} stored clone_uri password(s) cannot be decrypted by "
            f"any key in {path} and were left as they are (repositories: "
            f"{', '.join(result.undecryptable)}); put back the key they were encrypted with, "
            "or give those repositories their clone_uri again with update_repo"
            + ("; the old keys were kept" if drop_old_keys else ""))
    if drop_old_keys and len(keys.keys) > 1:
        secret_keys.write(path, [keys.keys[0]])
        click.echo(f"Removed {len(keys.keys) - 1} old key(s) from {path}.", err=True)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())



@main.group("known-hosts")
def known_hosts_group() -> None:
    """The ssh host keys that ssh:// clone URIs may use (nothing else is trusted)."""


def _known_hosts_path(ctx: click.Context) -> Path:
    from rpcserver.domain.repositories import known_hosts_file

    return known_hosts_file(_load(ctx, None))


@known_hosts_group.command("add")
@click.argument("host")
@click.option("--port", type=int, default=22, show_default=True)
@click.option("--key", "key_text", default=None,
              help="The public key (`ssh-ed25519 AAAA...`); default: read from standard input.")
@click.pass_context
def known_hosts_add(ctx: click.Context, host: str, port: int, key_text: str | None) -> None:
    """Trust HOST's ssh host key (as printed by `ssh-keyscan HOST`, run by hand)."""
    from rpcserver.vcs import known_hosts

    text = key_text if key_text is not None else sys.stdin.read()
    try:
        entry = known_hosts.parse_key(host, port, text.strip())
    except known_hosts.KnownHostsError as exc:
        raise click.ClickException(str(exc)) from None
    added = known_hosts.add(_known_hosts_path(ctx), entry)
    click.echo(f"{'added' if added else 'already present'}: {entry.pattern} {entry.key_type}")


@known_hosts_group.command("list")
@click.pass_context
def known_hosts_list(ctx: click.Context) -> None:
    """Print the trusted host keys, one per line."""
    from rpcserver.vcs import known_hosts

    for entry in known_hosts.read(_known_hosts_path(ctx)):
        click.echo(entry.line())


@known_hosts_group.command("remove")
@click.argument("host")
@click.option("--port", type=int, default=None, help="Only the key for this port.")
@click.pass_context
def known_hosts_remove(ctx: click.Context, host: str, port: int | None) -> None:
    """Stop trusting HOST's ssh host keys."""
    from rpcserver.vcs import known_hosts

    removed = known_hosts.remove(_known_hosts_path(ctx), host, port)
    if not removed:
        raise click.ClickException(f"no key for {host} is trusted")
    click.echo(f"removed {removed} key(s) of {host}")
