"""``paperfeed user ...``: accounts from the command line (for administrators)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from paperfeed.accounts import Accounts
from paperfeed.cli.common import data_dir_option, json_option, open_cli_store, out, print_json
from paperfeed.errors import NotFoundError, PaperfeedError
from paperfeed.model import User
from paperfeed.store import Store


def _read_password(from_stdin: bool, *, confirm: bool = True) -> str:
    if from_stdin:
        text = sys.stdin.readline().rstrip("\n")
        if not text:
            raise PaperfeedError("no password on standard input")
        return text
    if not sys.stdin.isatty():
        raise PaperfeedError("not a terminal: pass the password with --password-stdin")
    value: str = click.prompt("Password", hide_input=True, confirmation_prompt=confirm)
    return value


def _user(store: Store, username: str) -> User:
    found = store.user_credentials(username)
    if found is None:
        raise NotFoundError(f"no user {username!r}")
    return found[0]


def _user_json(user: User) -> dict[str, object]:
    return {
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "is_admin": user.is_admin,
        "created_at": user.created_at.isoformat(),
    }


@click.group()
def user() -> None:
    """Manage accounts: create, list, delete, reset a password, make an API token."""


@user.command("create")
@click.argument("username")
@click.option("--email", help="The user's e-mail address (optional).")
@click.option("--admin", is_flag=True, help="Make the user an administrator.")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input (else prompt)."
)
@data_dir_option
@json_option
def user_create(
    username: str,
    email: str | None,
    admin: bool,
    password_stdin: bool,
    data_dir: Path | None,
    as_json: bool,
) -> None:
    """Create an account (the instance's first account is always an administrator)."""
    password = _read_password(password_stdin)
    with open_cli_store(data_dir, create=True) as store:
        created = Accounts(store).sign_up(username, password, email=email, admin=admin)
    if as_json:
        print_json(_user_json(created))
    else:
        role = "administrator" if created.is_admin else "user"
        out.print(f"Created {role} {escape(created.username)} (id {created.id}).")


@user.command("list")
@data_dir_option
@json_option
def user_list(data_dir: Path | None, as_json: bool) -> None:
    """List the accounts."""
    with open_cli_store(data_dir) as store:
        users = store.list_users()
    if as_json:
        print_json([_user_json(u) for u in users])
        return
    if not users:
        out.print("No accounts yet: 'paperfeed user create NAME'.")
        return
    table = Table("id", "username", "email", "admin", "created")
    for u in users:
        table.add_row(
            str(u.id),
            escape(u.username),
            escape(u.email or ""),
            "yes" if u.is_admin else "",
            f"{u.created_at:%Y-%m-%d}",
        )
    out.print(table)


@user.command("delete")
@click.argument("username")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@data_dir_option
def user_delete(username: str, yes: bool, data_dir: Path | None) -> None:
    """Delete an account with all its votes, collections, tokens and subscriptions."""
    with open_cli_store(data_dir) as store:
        found = _user(store, username)
        if not yes:
            click.confirm(f"Delete {found.username} and all their data?", abort=True)
        Accounts(store).delete_user(found.id)
    out.print(f"Deleted {escape(found.username)}.")


@user.command("set-password")
@click.argument("username")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input (else prompt)."
)
@data_dir_option
def user_set_password(username: str, password_stdin: bool, data_dir: Path | None) -> None:
    """Set a new password for an account (ends its sessions)."""
    password = _read_password(password_stdin)
    with open_cli_store(data_dir) as store:
        Accounts(store).set_password(_user(store, username).id, password)
    out.print(f"Password of {escape(username)} changed; their sessions are ended.")


@user.command("token")
@click.argument("username")
@click.argument("name")
@data_dir_option
@json_option
def user_token(username: str, name: str, data_dir: Path | None, as_json: bool) -> None:
    """Create a personal API token for an account; the secret is shown this once."""
    with open_cli_store(data_dir) as store:
        new = Accounts(store).create_api_token(_user(store, username), name)
    if as_json:
        print_json({"id": new.token.id, "name": new.token.name, "token": new.secret})
    else:
        out.print(f"API token {escape(name)!r} (id {new.token.id}) for {escape(username)}:")
        click.echo(new.secret)
        out.print("[dim]Send it as 'Authorization: Bearer <token>'. It is not shown again.[/dim]")
