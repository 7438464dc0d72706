"""The methods of the Kallithea 0.7 API, for `rpc-api --list-methods` and shell completion.

A static table: the protocol has no method that lists methods, so this is what the *protocol*
offers, not what a particular server supports (an older server answers `No such method: ...`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Method:
    """One API method: its name, its arguments (required first) and what it is for."""

    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    summary: str

    @property
    def signature(self) -> str:
        """`repoid [clone_uri]`: the arguments as people read them in a usage line."""
        return " ".join([*self.required, *(f"[{name}]" for name in self.optional)])


def _m(name: str, required: str, optional: str, summary: str) -> Method:
    return Method(name, tuple(required.split()), tuple(optional.split()), summary)


_USER_FIELDS = "password firstname lastname active admin extern_type extern_name"
_REPO_FIELDS = "description private clone_uri landing_rev enable_statistics enable_downloads"

METHODS: tuple[Method, ...] = (
    # server
    _m("test", "args", "", "echo `args` back: checks host, key and admin rights"),
    _m("get_server_info", "", "", "server, Python, git and module versions"),
    _m("get_ip", "", "userid", "your IP as the server sees it, and a user's allowed IPs"),
    _m("rescan_repos", "", "remove_obsolete", "register repositories found on disk"),
    _m("invalidate_cache", "repoid", "", "invalidate a repository's caches"),
    # users
    _m("get_user", "", "userid", "one user with permissions (default: yourself)"),
    _m("get_users", "", "", "all users"),
    _m("create_user", "username email", _USER_FIELDS, "create a user"),
    _m("update_user", "userid", "username email " + _USER_FIELDS, "change a user"),
    _m("delete_user", "userid", "", "delete a user (who owns nothing)"),
    # user groups
    _m("get_user_group", "usergroupid", "", "one user group with its members"),
    _m("get_user_groups", "", "", "all user groups you may read"),
    _m("create_user_group", "group_name", "description owner active", "create a user group"),
    _m(
        "update_user_group",
        "usergroupid",
        "group_name description owner active",
        "change a user group",
    ),
    _m("delete_user_group", "usergroupid", "", "delete a user group"),
    _m("add_user_to_user_group", "usergroupid userid", "", "add a member to a user group"),
    _m(
        "remove_user_from_user_group",
        "usergroupid userid",
        "",
        "remove a member from a user group",
    ),
    # repositories
    _m(
        "get_repo",
        "repoid",
        "with_revision_names with_pullrequests",
        "one repository with members and followers",
    ),
    _m("get_repos", "", "", "all repositories you may read"),
    _m(
        "get_repo_nodes",
        "repoid revision root_path",
        "ret_type",
        "files and directories at a path and revision",
    ),
    _m(
        "create_repo",
        "repo_name",
        "owner repo_type " + _REPO_FIELDS + " copy_permissions",
        "create a repository (a mirror when clone_uri is given)",
    ),
    _m(
        "update_repo",
        "repoid",
        "name owner group " + _REPO_FIELDS,
        "change or move a repository",
    ),
    _m(
        "fork_repo",
        "repoid fork_name",
        "owner description copy_permissions private landing_rev",
        "fork a repository",
    ),
    _m("delete_repo", "repoid", "forks", "delete a repository (forks: detach|delete)"),
    _m("pull", "repoid", "clone_uri", "fetch a mirror from its remote (can take a while)"),
    _m(
        "get_changesets",
        "repoid",
        "start end start_date end_date branch_name reverse with_file_list max_revisions",
        "a repository's history",
    ),
    _m("get_changeset", "repoid raw_id", "with_reviews", "one changeset"),
    # repository permissions
    _m("grant_user_permission", "repoid userid perm", "", "grant a user a repository permission"),
    _m("revoke_user_permission", "repoid userid", "", "revoke a user's repository permission"),
    _m(
        "grant_user_group_permission",
        "repoid usergroupid perm",
        "",
        "grant a user group a repository permission",
    ),
    _m(
        "revoke_user_group_permission",
        "repoid usergroupid",
        "",
        "revoke a user group's repository permission",
    ),
    # repository groups
    _m("get_repo_group", "repogroupid", "", "one repository group with members"),
    _m("get_repo_groups", "", "", "all repository groups"),
    _m(
        "create_repo_group",
        "group_name",
        "description owner parent copy_permissions",
        "create a repository group",
    ),
    _m(
        "update_repo_group",
        "repogroupid",
        "group_name description owner parent",
        "change or move a repository group",
    ),
    _m("delete_repo_group", "repogroupid", "", "delete an empty repository group"),
    _m(
        "grant_user_permission_to_repo_group",
        "repogroupid userid perm",
        "apply_to_children",
        "grant a user a repository group permission",
    ),
    _m(
        "revoke_user_permission_from_repo_group",
        "repogroupid userid",
        "apply_to_children",
        "revoke a user's repository group permission",
    ),
    _m(
        "grant_user_group_permission_to_repo_group",
        "repogroupid usergroupid perm",
        "apply_to_children",
        "grant a user group a repository group permission",
    ),
    _m(
        "revoke_user_group_permission_from_repo_group",
        "repogroupid usergroupid",
        "apply_to_children",
        "revoke a user group's repository group permission",
    ),
    # gists
    _m("get_gist", "gistid", "", "one gist"),
    _m("get_gists", "", "userid", "a user's gists (default: yours)"),
    _m("create_gist", "files", "owner gist_type lifetime description", "create a gist"),
    _m("delete_gist", "gistid", "", "delete a gist"),
    # pull requests
    _m("get_pullrequest", "pullrequest_id", "", "one pull request"),
    _m(
        "comment_pullrequest",
        "pull_request_id",
        "comment_msg status close_pr",
        "comment on, review or close a pull request",
    ),
    _m("edit_reviewers", "pull_request_id", "add remove", "add or remove pull request reviewers"),
)

BY_NAME: dict[str, Method] = {method.name: method for method in METHODS}
