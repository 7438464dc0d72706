"""A digit-only string names a user by id (API.md §2): a user whose name is all digits must not
read another user through get_user, and no new user may get such a name."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from werkzeug.test import Client

from tests.conftest import ApiUser, Rpc
from tests.security.conftest import err, ok

MakeUser = Callable[..., ApiUser]
DIGITS = ("Invalid `username` arg in JSON DATA: must not be only digits (a digit-only string "
          "names a user by id)")


def test_user_named_like_the_admins_id_cannot_read_the_admin(rpc: Rpc,
                                                             make_user: MakeUser) -> None:
    # As a user imported from Kallithea (which allows such names) would be.
    two = make_user("2")
    assert two.id != 2
    answer = rpc("get_user", key=two.key, userid="2")
    assert err(answer) == "userid is not the same as your user"


def test_digit_named_user_still_reads_itself_by_id(rpc: Rpc, make_user: MakeUser) -> None:
    two = make_user("2")
    for ident in (two.id, str(two.id), None):
        result = ok(rpc("get_user", key=two.key, userid=ident))
        assert (result["user_id"], result["username"]) == (two.id, "2")


def test_user_named_like_a_missing_id_is_refused(rpc: Rpc, make_user: MakeUser) -> None:
    # "999" is read as id 999, which does not exist: refused like any other user, not "not found".
    odd = make_user("999")
    assert err(rpc("get_user", key=odd.key, userid="999")) == "userid is not the same as your user"


@pytest.mark.parametrize("name", ["2", "0", "007", "12345678901234567890"])
def test_create_user_refuses_digit_only_names(rpc: Rpc, name: str) -> None:
    assert err(rpc("create_user", username=name, email=f"u{name}@example.com")) == DIGITS
    ok(rpc("create_user", username=f"{name}a", email=f"u{name}@example.com"))


def test_update_user_refuses_a_digit_only_name(rpc: Rpc, make_user: MakeUser) -> None:
    bob = make_user("bob")
    assert err(rpc("update_user", userid="bob", username="42")) == DIGITS
    assert ok(rpc("get_user", userid=bob.id))["username"] == "bob"


def test_an_imported_digit_name_may_be_kept(rpc: Rpc, make_user: MakeUser) -> None:
    seven = make_user("7")
    result = ok(rpc("update_user", userid=seven.id, username="7", lastname="Seven"))
    assert result["user"]["username"] == "7"


def test_rhodecode_create_user_refuses_digit_only_names(client: Client, admin_key: str) -> None:
    body = {"api_key": admin_key, "method": "create_user",
            "args": {"username": "3", "email": "three@example.com"}}
    answer = client.post("/_admin/api", json=body).get_json()
    assert answer == {"result": None, "error": DIGITS}
