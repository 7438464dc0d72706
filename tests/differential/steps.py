"""The scenario: every step runs on both servers, in this order (runner.py says what a step
is). Both servers start empty but for `admin`, so the same calls make the same objects under
the same names. Add a step anywhere; if it differs, differences.toml must say how.
"""

from __future__ import annotations

from typing import Any

from tests.differential.runner import Context, Step
from tests.hgremotes import hg

USERS = ("reader", "nobody", "ugadmin")


def c(step: str, method: str, as_: str = "admin", /, **args: Any) -> Step:
    """A call step: `method` with `args`, sent with `as_`'s key."""
    return {"name": step, "method": method, "as": as_, "args": args}


def raw(name: str, body: str | None, *, method: str = "POST", query: str = "",
        headers: dict[str, str] | None = None, path: str = "", **options: Any) -> Step:
    """A raw HTTP step (envelope edge cases)."""
    if headers is None:
        headers = {"Content-Type": "application/json"}
    return {"name": name, "raw": {"method": method, "body": body, "query": query,
                                  "headers": headers, "path": path}, **options}


def issue_keys(context: Context) -> None:
    for side in (context.ours, context.theirs):
        for user in USERS:
            side.keys[user] = side.issue_key(user)


def one_more_commit(context: Context) -> None:
    upstream = context.extra["remote"].upstream
    (commit,) = upstream.commit(1, prefix="later")
    context.vars["commit5"] = commit


def one_more_hg_changeset(context: Context) -> None:
    """On `default` again (the upstream's last changesets were on `stable`)."""
    upstream = context.extra["remote"].hg
    hg("update", "--clean", "--quiet", "-r", "default", repo=upstream.path)
    (node,) = upstream.commit(1, prefix="later")
    upstream.bookmark("alpha")
    context.vars["hgnode5"] = node


def on_ours(method: str, **args: Any) -> Step:
    """An action undoing, on our side only, what only we did (a create Kallithea refused), so
    that the difference does not spread to every later step."""

    def undo(context: Context) -> None:
        context.extra["ours"].call(method, **args)

    return {"name": f"ours-only {method} {args}", "do": undo}

SERVER: list[Step] = [
    c("server.test", "test", args="hello"),
    c("server.test.object", "test", args={"a": [1, 2], "b": None}),
    c("server.test.missing", "test"),
    c("server.get_server_info", "get_server_info") | {
        "mask": ["result.modules", "result.platform"],
        "rewrite": {"result.py_version": [[r" .*$", " <build>"],
                                          [r"^\d+\.\d+\.\d+", "<x.y.z>"]],
                    "result.git_version": [[r"^\d+\.\d+\.\d+", "<x.y.z>"]],
                    "result.git_path": [[r"^/.*/", "<dir>/"]]}},
    c("server.get_ip", "get_ip"),
    c("server.get_ip.userid", "get_ip", userid="admin"),
    c("server.show_ip", "show_ip"),
    c("server.rescan_repos.empty", "rescan_repos"),
    c("server.get_server_info.by_nobody", "get_server_info", "nobody"),
]

USERS_STEPS: list[Step] = [
    c("users.get_users.initial", "get_users"),
    c("users.get_user.self", "get_user"),
    c("users.get_user.admin_by_name", "get_user", userid="admin"),
    c("users.get_user.admin_by_id", "get_user", userid=2),
    c("users.get_user.admin_by_digit_string", "get_user", userid="2"),
    c("users.get_user.default", "get_user", userid="default"),
    c("users.get_user.unknown", "get_user", userid="ghost"),
    c("users.get_user.unknown_id", "get_user", userid=999),
    c("users.create.reader", "create_user", username="reader", email="reader@example.com",
      password="Passw0rd-reader", firstname="Rea", lastname="Der"),
    c("users.create.nobody", "create_user", username="nobody", email="nobody@example.com",
      password="Passw0rd-nobody"),
    c("users.create.ugadmin", "create_user", username="ugadmin", email="ugadmin@example.com",
      firstname="Group", lastname="Admin"),
    {"name": "users.issue_keys", "do": issue_keys},
    c("users.create.extern", "create_user", username="ldapuser", email="ldap@example.com",
      extern_type="ldap", extern_name="uid=ldapuser,dc=example,dc=com"),
    c("users.create.inactive_admin", "create_user", username="boss", email="boss@example.com",
      active=False, admin=True),
    c("users.create.duplicate", "create_user", username="reader", email="other@example.com"),
    c("users.create.duplicate_email", "create_user", username="other",
      email="reader@example.com"),
    c("users.create.duplicate_email_case", "create_user", username="other",
      email="Reader@Example.COM"),
    c("users.create.missing_email", "create_user", username="x1"),
    c("users.create.missing_both", "create_user"),
    c("users.create.unknown_args", "create_user", username="x2", email="x2@example.com",
      zeta=1, alpha=2),
    c("users.create.by_nobody", "create_user", "nobody", username="x3",
      email="x3@example.com"),
    c("users.get_users.after_create", "get_users"),
    c("users.get_user.reader", "get_user", userid="reader"),
    c("users.get_user.extern", "get_user", userid="ldapuser"),
    c("users.get_user.as_reader_self", "get_user", "reader"),
    c("users.get_user.as_reader_self_by_name", "get_user", "reader", userid="reader"),
    c("users.get_user.as_reader_other", "get_user", "reader", userid="admin"),
    c("users.get_user.as_reader_unknown", "get_user", "reader", userid="ghost"),
    c("users.get_users.by_nobody", "get_users", "nobody"),
    c("users.update.reader", "update_user", userid="reader", firstname="Reader",
      lastname="Person"),
    c("users.update.boss_active", "update_user", userid="boss", active=True),
    c("users.update.unknown", "update_user", userid="ghost", firstname="G"),
    c("users.update.default", "update_user", userid="default", firstname="D"),
    c("users.update.taken_email", "update_user", userid="ldapuser",
      email="reader@example.com"),
    c("users.update.missing_userid", "update_user", firstname="Nope"),
    c("users.update.by_nobody", "update_user", "nobody", userid="nobody", firstname="N"),
    c("users.delete.boss", "delete_user", userid="boss"),
    c("users.delete.again", "delete_user", userid="boss"),
    c("users.delete.default", "delete_user", userid="default"),
    c("users.get_user.deleted", "get_user", userid="boss"),
]

USER_GROUPS: list[Step] = [
    c("usergroups.get_all.initial", "get_user_groups"),
    c("usergroups.create.devs", "create_user_group", group_name="devs",
      description="Developers"),
    c("usergroups.create.ops", "create_user_group", group_name="ops", owner="ugadmin"),
    c("usergroups.create.inactive", "create_user_group", group_name="sleepy", active=False),
    c("usergroups.create.duplicate", "create_user_group", group_name="devs"),
    c("usergroups.create.unknown_owner", "create_user_group", group_name="nobodys",
      owner="ghost"),
    c("usergroups.create.missing_name", "create_user_group"),
    c("usergroups.create.by_nobody", "create_user_group", "nobody", group_name="mine"),
    c("usergroups.get.devs", "get_user_group", usergroupid="devs"),
    c("usergroups.get.unknown", "get_user_group", usergroupid="ghosts"),
    c("usergroups.add.reader", "add_user_to_user_group", usergroupid="devs",
      userid="reader"),
    c("usergroups.add.reader_again", "add_user_to_user_group", usergroupid="devs",
      userid="reader"),
    c("usergroups.add.unknown_user", "add_user_to_user_group", usergroupid="devs",
      userid="ghost"),
    c("usergroups.add.unknown_group", "add_user_to_user_group", usergroupid="ghosts",
      userid="reader"),
    c("usergroups.get.devs_with_member", "get_user_group", usergroupid="devs"),
    c("usergroups.remove.not_member", "remove_user_from_user_group", usergroupid="ops",
      userid="reader"),
    c("usergroups.update.devs", "update_user_group", usergroupid="devs",
      description="The developers"),
    c("usergroups.update.rename_sleepy", "update_user_group", usergroupid="sleepy",
      group_name="awake", active=True),
    c("usergroups.update.unknown", "update_user_group", usergroupid="ghosts",
      description="x"),
    c("usergroups.as_ugadmin.add", "add_user_to_user_group", "ugadmin", usergroupid="ops",
      userid="nobody"),
    c("usergroups.as_ugadmin.get", "get_user_group", "ugadmin", usergroupid="ops"),
    c("usergroups.as_ugadmin.update", "update_user_group", "ugadmin", usergroupid="ops",
      description="Operations"),
    c("usergroups.as_ugadmin.remove", "remove_user_from_user_group", "ugadmin",
      usergroupid="ops", userid="nobody"),
    c("usergroups.as_ugadmin.add_to_devs", "add_user_to_user_group", "ugadmin",
      usergroupid="devs", userid="nobody"),
    c("usergroups.as_nobody.update_ops", "update_user_group", "nobody", usergroupid="ops",
      description="mine now"),
    c("usergroups.as_nobody.get_all", "get_user_groups", "nobody"),
    c("usergroups.as_ugadmin.get_all", "get_user_groups", "ugadmin"),
    c("usergroups.get_all", "get_user_groups"),
    c("usergroups.delete.awake", "delete_user_group", usergroupid="awake"),
    c("usergroups.delete.unknown", "delete_user_group", usergroupid="awake"),
    c("usergroups.create_users_group.alias", "create_users_group", group_name="aliased"),
    on_ours("delete_user_group", usergroupid="aliased"),
]

REPO_GROUPS: list[Step] = [
    c("repogroups.get_all.initial", "get_repo_groups"),
    c("repogroups.create.proj", "create_repo_group", group_name="proj"),
    c("repogroups.create.docs", "create_repo_group", group_name="docs",
      description="Documentation", owner="reader"),
    c("repogroups.create.sub", "create_repo_group", group_name="sub", parent="proj",
      description="A subgroup"),
    c("repogroups.create.duplicate", "create_repo_group", group_name="proj"),
    c("repogroups.create.slash", "create_repo_group", group_name="proj/deep"),
    on_ours("delete_repo_group", repogroupid="proj/deep"),
    c("repogroups.create.unknown_parent", "create_repo_group", group_name="orphan",
      parent="ghostgroup"),
    c("repogroups.create.by_nobody", "create_repo_group", "nobody", group_name="nope"),
    c("repogroups.get.proj", "get_repo_group", repogroupid="proj"),
    c("repogroups.get.sub", "get_repo_group", repogroupid="proj/sub"),
    c("repogroups.get.docs", "get_repo_group", repogroupid="docs"),
    c("repogroups.get.unknown", "get_repo_group", repogroupid="ghostgroup"),
    c("repogroups.update.docs", "update_repo_group", repogroupid="docs",
      description="All the documentation"),
    c("repogroups.update.unknown", "update_repo_group", repogroupid="ghostgroup",
      description="x"),
    c("repogroups.grant.reader", "grant_user_permission_to_repo_group", repogroupid="proj",
      userid="reader", perm="group.read"),
    c("repogroups.grant.reader_all", "grant_user_permission_to_repo_group",
      repogroupid="proj", userid="reader", perm="group.write", apply_to_children="all"),
    c("repogroups.grant.bad_perm", "grant_user_permission_to_repo_group", repogroupid="proj",
      userid="reader", perm="repository.read"),
    c("repogroups.grant.unknown_perm", "grant_user_permission_to_repo_group",
      repogroupid="proj", userid="reader", perm="group.bogus"),
    c("repogroups.grant.devs", "grant_user_group_permission_to_repo_group",
      repogroupid="proj", usergroupid="devs", perm="group.write"),
    c("repogroups.grant.unknown_user", "grant_user_permission_to_repo_group",
      repogroupid="proj", userid="ghost", perm="group.read"),
    c("repogroups.get.proj_with_grants", "get_repo_group", repogroupid="proj"),
    c("repogroups.revoke.devs", "revoke_user_group_permission_from_repo_group",
      repogroupid="proj", usergroupid="devs"),
    c("repogroups.revoke.reader", "revoke_user_permission_from_repo_group",
      repogroupid="proj", userid="reader"),
    c("repogroups.grant.reader_again", "grant_user_permission_to_repo_group",
      repogroupid="proj", userid="reader", perm="group.read"),
    c("repogroups.as_reader.get_all", "get_repo_groups", "reader"),
    c("repogroups.as_nobody.get", "get_repo_group", "nobody", repogroupid="proj"),
    c("repogroups.get_all", "get_repo_groups"),
]

REPOS: list[Step] = [
    c("repos.get_all.initial", "get_repos"),
    c("repos.create.plain", "create_repo", repo_name="plain", repo_type="git"),
    c("repos.get.plain", "get_repo", repoid="plain"),
    c("repos.create.described", "create_repo", repo_name="described", repo_type="git",
      description="Has a description", owner="reader"),
    c("repos.get.described", "get_repo", repoid="described"),
    c("repos.create.in_group", "create_repo", repo_name="proj/inner", repo_type="git"),
    c("repos.get.in_group", "get_repo", repoid="proj/inner"),
    c("repos.create.private", "create_repo", repo_name="secret", repo_type="git",
      private=True),
    c("repos.get.private", "get_repo", repoid="secret"),
    c("repos.create.stats", "create_repo", repo_name="stats", repo_type="git",
      enable_statistics=True, enable_downloads=True),
    c("repos.get.stats", "get_repo", repoid="stats"),
    # so that the deliberate difference above does not show in every later listing
    c("repos.update.stats_off", "update_repo", repoid="stats", enable_statistics=False,
      enable_downloads=False),
    c("repos.create.mirror", "create_repo", repo_name="mirror", repo_type="git",
      clone_uri="${remote}/up", description="A mirror"),
    c("repos.get.mirror", "get_repo", repoid="mirror"),
    c("repos.get.mirror_revision_names", "get_repo", repoid="mirror",
      with_revision_names=True),
    c("repos.create.duplicate", "create_repo", repo_name="plain", repo_type="git"),
    c("repos.create.unknown_group", "create_repo", repo_name="nogroup/x", repo_type="git"),
    c("repos.create.unknown_owner", "create_repo", repo_name="x4", repo_type="git",
      owner="ghost"),
    c("repos.create.file_clone_uri", "create_repo", repo_name="x5", repo_type="git",
      clone_uri="file:///etc"),
    c("repos.create.missing_name", "create_repo", repo_type="git"),
    c("repos.create.default_type", "create_repo", repo_name="typeless"),
    c("repos.get.default_type", "get_repo", repoid="typeless"),
    c("repos.delete.default_type", "delete_repo", repoid="typeless"),
    c("repos.create.as_nobody", "create_repo", "nobody", repo_name="nobodys",
      repo_type="git"),
    c("repos.create.as_nobody_owner", "create_repo", "nobody", repo_name="x6",
      repo_type="git", owner="reader"),
    c("repos.create.as_nobody_in_group", "create_repo", "nobody", repo_name="proj/x7",
      repo_type="git"),
    c("repos.get.unknown", "get_repo", repoid="ghostrepo"),
    c("repos.get.missing", "get_repo"),
    c("repos.get_all", "get_repos"),
    # history of the mirror (3 commits on master, a branch, a tag)
    c("repos.changesets", "get_changesets", repoid="mirror"),
    c("repos.changesets.reverse", "get_changesets", repoid="mirror", reverse=True),
    c("repos.changesets.file_list", "get_changesets", repoid="mirror", with_file_list=True),
    c("repos.changesets.max1", "get_changesets", repoid="mirror", max_revisions=1),
    c("repos.changesets.start_end", "get_changesets", repoid="mirror", start="${commit1}",
      end="${commit2}"),
    c("repos.changesets.branch", "get_changesets", repoid="mirror", branch_name="dev"),
    c("repos.changesets.unknown_branch", "get_changesets", repoid="mirror",
      branch_name="nope"),
    c("repos.changesets.empty_repo", "get_changesets", repoid="plain"),
    c("repos.changesets.unknown_repo", "get_changesets", repoid="ghostrepo"),
    c("repos.changeset", "get_changeset", repoid="mirror", raw_id="${commit3}"),
    c("repos.changeset.first", "get_changeset", repoid="mirror", raw_id="${commit1}"),
    c("repos.changeset.unknown", "get_changeset", repoid="mirror", raw_id="deadbeef"),
    c("repos.nodes.root", "get_repo_nodes", repoid="mirror", revision="tip", root_path=""),
    c("repos.nodes.files", "get_repo_nodes", repoid="mirror", revision="tip", root_path="",
      ret_type="files"),
    c("repos.nodes.dirs", "get_repo_nodes", repoid="mirror", revision="tip", root_path="",
      ret_type="dirs"),
    c("repos.nodes.subdir", "get_repo_nodes", repoid="mirror", revision="${commit3}",
      root_path="dir1"),
    c("repos.nodes.bad_ret_type", "get_repo_nodes", repoid="mirror", revision="tip",
      root_path="", ret_type="links"),
    c("repos.nodes.bad_path", "get_repo_nodes", repoid="mirror", revision="tip",
      root_path="nowhere"),
    c("repos.nodes.empty_repo", "get_repo_nodes", repoid="plain", revision="tip",
      root_path=""),
    # pull
    {"name": "repos.upstream_commit", "do": one_more_commit},
    c("repos.pull.mirror", "pull", repoid="mirror"),
    c("repos.changesets.after_pull", "get_changesets", repoid="mirror"),
    c("repos.pull.no_clone_uri", "pull", repoid="plain"),
    c("repos.pull.unknown", "pull", repoid="ghostrepo"),
    c("repos.pull.by_nobody", "pull", "nobody", repoid="mirror"),
    c("repos.invalidate_cache", "invalidate_cache", repoid="mirror"),
    c("repos.invalidate_cache.unknown", "invalidate_cache", repoid="ghostrepo"),
    # permissions
    c("repos.grant.reader", "grant_user_permission", repoid="secret", userid="reader",
      perm="repository.read"),
    c("repos.grant.reader_write", "grant_user_permission", repoid="mirror", userid="reader",
      perm="repository.write"),
    c("repos.grant.devs", "grant_user_group_permission", repoid="mirror",
      usergroupid="devs", perm="repository.read"),
    c("repos.grant.bad_kind", "grant_user_permission", repoid="mirror", userid="reader",
      perm="group.read"),
    c("repos.grant.unknown_perm", "grant_user_permission", repoid="mirror",
      userid="reader", perm="repository.bogus"),
    # Kallithea stored group.read on the repository: grant what it had again
    c("repos.grant.reader_write_again", "grant_user_permission", repoid="mirror",
      userid="reader", perm="repository.write"),
    c("repos.grant.unknown_user", "grant_user_permission", repoid="mirror", userid="ghost",
      perm="repository.read"),
    c("repos.grant.unknown_group", "grant_user_group_permission", repoid="mirror",
      usergroupid="ghosts", perm="repository.read"),
    c("repos.get.mirror_with_grants", "get_repo", repoid="mirror"),
    c("repos.get.private_with_grant", "get_repo", repoid="secret"),
    c("repos.as_reader.get_private", "get_repo", "reader", repoid="secret"),
    c("repos.as_nobody.get_private", "get_repo", "nobody", repoid="secret"),
    c("repos.as_nobody.get_public", "get_repo", "nobody", repoid="plain"),
    c("repos.as_reader.get_all", "get_repos", "reader"),
    c("repos.as_nobody.get_all", "get_repos", "nobody"),
    c("repos.as_reader.update_private", "update_repo", "reader", repoid="secret",
      description="mine"),
    c("repos.as_reader.invalidate", "invalidate_cache", "reader", repoid="mirror"),
    c("repos.as_reader.changesets_private", "get_changesets", "reader", repoid="secret"),
    c("repos.as_nobody.changesets_private", "get_changesets", "nobody", repoid="secret"),
    c("users.get_user.reader_permissions", "get_user", userid="reader"),
    c("users.get_user.as_reader_permissions", "get_user", "reader"),
    c("repos.revoke.reader", "revoke_user_permission", repoid="secret", userid="reader"),
    c("repos.revoke.devs", "revoke_user_group_permission", repoid="mirror",
      usergroupid="devs"),
    c("repos.revoke.not_granted", "revoke_user_permission", repoid="plain", userid="nobody"),
    # updates
    c("repos.update.description", "update_repo", repoid="plain", description="Plain repo"),
    c("repos.update.private", "update_repo", repoid="stats", private=True),
    c("repos.get.stats_private", "get_repo", repoid="stats"),
    c("repos.update.owner", "update_repo", repoid="plain", owner="reader"),
    c("repos.update.unknown_owner", "update_repo", repoid="plain", owner="ghost"),
    c("repos.update.rename", "update_repo", repoid="described", name="renamed"),
    c("repos.get.renamed", "get_repo", repoid="renamed"),
    c("repos.update.file_clone_uri", "update_repo", repoid="plain",
      clone_uri="file:///etc"),
    c("repos.update.unknown", "update_repo", repoid="ghostrepo", description="x"),
    c("repos.update.to_group", "update_repo", repoid="stats", group="proj"),
    # forks
    c("repos.fork", "fork_repo", repoid="mirror", fork_name="mirror-fork"),
    c("repos.get.fork", "get_repo", repoid="mirror-fork"),
    c("repos.fork.duplicate", "fork_repo", repoid="mirror", fork_name="mirror-fork"),
    c("repos.fork.unknown", "fork_repo", repoid="ghostrepo", fork_name="x8"),
    c("repos.fork.as_nobody", "fork_repo", "nobody", repoid="mirror", fork_name="nobody-fork"),
    c("repos.delete.with_forks", "delete_repo", repoid="mirror"),
    c("repos.delete.detach", "delete_repo", repoid="mirror", forks="detach"),
    c("repos.get.fork_detached", "get_repo", repoid="mirror-fork"),
    c("repos.delete.plain", "delete_repo", repoid="plain"),
    c("repos.delete.unknown", "delete_repo", repoid="plain"),
    c("repos.delete.as_nobody", "delete_repo", "nobody", repoid="mirror-fork"),
    c("repos.rescan", "rescan_repos"),
    c("repos.get_all.final", "get_repos"),
    # repository groups that now hold things
    c("repogroups.delete.docs", "delete_repo_group", repogroupid="docs"),
    c("repogroups.delete.unknown", "delete_repo_group", repogroupid="docs"),
    c("repogroups.get.proj_final", "get_repo_group", repogroupid="proj"),
    c("users.get_user.as_nobody_permissions", "get_user", "nobody"),
    c("users.delete.owner_of_repos", "delete_user", userid="reader"),
]

MORE: list[Step] = [
    # case variants: names are case-sensitive (users: unique case-insensitively)
    c("case.get_repo", "get_repo", repoid="MIRROR-FORK"),
    c("case.get_user", "get_user", userid="READER"),
    c("case.get_user_group", "get_user_group", usergroupid="DEVS"),
    c("case.get_repo_group", "get_repo_group", repogroupid="PROJ"),
    c("case.create_user_group", "create_user_group", group_name="DEVS"),
    c("case.create_repo", "create_repo", repo_name="MIRROR-FORK", repo_type="git"),
    c("case.create_repo_group", "create_repo_group", group_name="PROJ"),
    c("case.create_user", "create_user", username="casey", email="casey@example.com"),
    c("case.create_user_variant", "create_user", username="CASEY", email="casey2@example.com"),
    c("case.get_user_after_variant", "get_user", userid="casey"),
    # more arguments
    c("more.fork_options", "fork_repo", repoid="mirror-fork", fork_name="proj/fork2",
      description="Second fork", private=True, copy_permissions=True),
    c("more.get_fork_options", "get_repo", repoid="proj/fork2"),
    c("more.create_landing_rev", "create_repo", repo_name="landed", repo_type="git",
      landing_rev="branch:master", copy_permissions=True),
    c("more.get_landing_rev", "get_repo", repoid="landed"),
    c("more.get_repo_pullrequests", "get_repo", repoid="mirror-fork", with_pullrequests=True),
    c("more.changeset_reviews", "get_changeset", repoid="mirror-fork", raw_id="${commit2}",
      with_reviews=True),
    c("more.changesets_dates", "get_changesets", repoid="mirror-fork",
      start_date="2024-01-01T00:01:30", end_date="2024-01-01T00:03:30"),
    c("more.nodes_unknown_revision", "get_repo_nodes", repoid="mirror-fork",
      revision="feedface", root_path=""),
    c("more.pull_with_clone_uri", "pull", repoid="mirror-fork", clone_uri="${remote}/up"),
    c("more.invalidate_by_nobody", "invalidate_cache", "nobody", repoid="mirror-fork"),
    c("more.get_ip_unknown", "get_ip", userid="ghost"),
    c("more.rescan_remove_obsolete", "rescan_repos", remove_obsolete=True),
    c("more.update_user_group_owner", "update_user_group", usergroupid="devs", owner="reader"),
    c("more.update_user_group_taken", "update_user_group", usergroupid="devs",
      group_name="ops"),
    c("more.update_repo_group_rename", "update_repo_group", repogroupid="proj/sub",
      group_name="subgroup"),
    c("more.get_repo_group_renamed", "get_repo_group", repogroupid="proj/subgroup"),
    c("more.grant_bogus_children", "grant_user_permission_to_repo_group", repogroupid="proj",
      userid="nobody", perm="group.read", apply_to_children="bogus"),
    c("more.grant_group_children_repos", "grant_user_group_permission_to_repo_group",
      repogroupid="proj", usergroupid="ops", perm="group.read", apply_to_children="repos"),
    c("more.get_repo_in_proj", "get_repo", repoid="proj/fork2"),
    c("more.delete_nonempty_group", "delete_repo_group", repogroupid="proj/subgroup"),
    c("more.delete_user_group_with_grants", "delete_user_group", usergroupid="ops"),
    c("more.delete_repo_forks_delete", "delete_repo", repoid="mirror-fork", forks="delete"),
    c("more.get_repos_end", "get_repos"),
]

NOT_BUILT: list[Step] = [
    c("gists.get_all", "get_gists"),
    c("pullrequests.get", "get_pullrequest", pullrequest_id=1),
]

ENVELOPE: list[Step] = [
    raw("envelope.get_without_body", None, method="GET"),
    raw("envelope.content_length_0", ""),
    raw("envelope.not_json", "{not json"),
    raw("envelope.json_array", "[1, 2]"),
    raw("envelope.json_string", '"hello"'),
    raw("envelope.missing_api_key", '{"id": 7, "method": "test", "args": {}}'),
    raw("envelope.missing_method", '{"id": 7, "api_key": "${key:reader}", "args": {}}'),
    raw("envelope.missing_args", '{"id": 7, "api_key": "${key:reader}", "method": "get_user"}'),
    raw("envelope.args_null",
        '{"id": 7, "api_key": "${key:reader}", "method": "get_user", "args": null}'),
    raw("envelope.args_list",
        '{"id": 7, "api_key": "${key:reader}", "method": "get_user", "args": []}'),
    raw("envelope.bad_key", '{"id": 7, "api_key": "0123456789abcdef", "method": "get_user",'
        ' "args": {}}'),
    raw("envelope.key_not_string", '{"id": 7, "api_key": 12345, "method": "get_user",'
        ' "args": {}}'),
    raw("envelope.method_not_string",
        '{"id": 7, "api_key": "${key:reader}", "method": 3, "args": {}}'),
    raw("envelope.private_method",
        '{"id": 7, "api_key": "${key:reader}", "method": "_get_user", "args": {}}'),
    raw("envelope.unknown_method",
        '{"id": 7, "api_key": "${key:reader}", "method": "get_nothing", "args": {}}'),
    raw("envelope.method_case",
        '{"id": 7, "api_key": "${key:reader}", "method": "Get_User", "args": {}}'),
    *[raw(f"envelope.id_{kind}", '{"id": ' + value + ', "api_key": "${key}", "method": "test",'
          ' "args": {"args": 1}}', raw_text=True)
      for kind, value in [("string", '"abc"'), ("null", "null"), ("float", "1.5"),
                          ("big", "123456789012345678901234567890"),
                          ("object", '{"a": [1, "b"]}'), ("list", "[1, 2]"),
                          ("bool", "true"), ("negative", "-7"), ("empty_string", '""')]],
    raw("envelope.non_ascii", '{"id": 1, "api_key": "${key}", "method": "test",'
        ' "args": {"args": "Zo\\u00eb \\u2603"}}', raw_text=True),
    raw("envelope.text_plain", '{"id": 1, "api_key": "${key}", "method": "test",'
        ' "args": {"args": "x"}}', headers={"Content-Type": "text/plain"}, raw_text=True),
    raw("envelope.no_content_type", '{"id": 1, "api_key": "${key}", "method": "test",'
        ' "args": {"args": "x"}}', headers={}),
    raw("envelope.form_content_type", '{"id": 1, "api_key": "${key}", "method": "test",'
        ' "args": {"args": "x"}}',
        headers={"Content-Type": "application/x-www-form-urlencoded"}),
    raw("envelope.trailing_slash", '{"id": 1, "api_key": "${key}", "method": "test",'
        ' "args": {"args": "x"}}', path="/"),
    raw("envelope.get_with_body", '{"id": 1, "api_key": "${key}", "method": "test",'
        ' "args": {"args": "x"}}', method="GET"),
    raw("envelope.put", '{"id": 1, "api_key": "${key}", "method": "test",'
        ' "args": {"args": "x"}}', method="PUT"),
    raw("envelope.query_method_put", '{"id": 1, "api_key": "${key}", "method": "test",'
        ' "args": {"args": "x"}}', query="?_method=PUT"),
    raw("envelope.query_api_key_wrong", '{"id": 1, "api_key": "${key}", "method": "test",'
        ' "args": {"args": "x"}}', query="?api_key=0123456789abcdef0123456789abcdef01234567"),
    raw("envelope.authorization_wrong", '{"id": 1, "api_key": "${key}", "method": "test",'
        ' "args": {"args": "x"}}',
        headers={"Authorization": "Bearer 0123456789abcdef0123456789abcdef01234567"}),
    raw("envelope.rhodecode_no_id", '{"api_key": "${key}", "method": "test",'
        ' "args": {"args": "x"}}'),
    raw("envelope.rhodecode_empty", "{}"),
    raw("envelope.jsonrpc_extra_member", '{"id": 1, "jsonrpc": "1.0", "api_key": "${key}",'
        ' "method": "test", "args": {"args": "x"}}'),
    raw("envelope.wrong_typed_arg", '{"id": 1, "api_key": "${key}", "method": "get_repo",'
        ' "args": {"repoid": ["mirror"]}}'),
    raw("envelope.bool_userid", '{"id": 1, "api_key": "${key}", "method": "get_user",'
        ' "args": {"userid": true}}'),
]

# Mercurial, last so that the steps above keep their ids. The upstream (`${hgremote}`, `hg serve`):
# revisions 0-2 on `default` (0 and 1 change dir0-dir2, 2 adds file.txt), 3 on `stable`, 4 tags
# 2 as `v1` (on `stable`, so 4 is tip); bookmark `mark` on 1. Every hg call of ours still starts
# hg a few times (~0.3 s each), so the steps are few.
HG: list[Step] = [
    c("hg.create.empty", "create_repo", repo_name="hgempty", repo_type="hg"),
    c("hg.get.empty", "get_repo", repoid="hgempty"),
    c("hg.get.empty_revision_names", "get_repo", repoid="hgempty", with_revision_names=True),
    c("hg.changesets.empty", "get_changesets", repoid="hgempty"),
    c("hg.create.mirror", "create_repo", repo_name="hgmirror", repo_type="hg",
      clone_uri="${hgremote}", description="An hg mirror"),
    c("hg.get.mirror", "get_repo", repoid="hgmirror"),
    c("hg.get.mirror_revision_names", "get_repo", repoid="hgmirror",
      with_revision_names=True),
    c("hg.get_all", "get_repos"),
    c("hg.nodes.root", "get_repo_nodes", repoid="hgmirror", revision="tip", root_path=""),
    c("hg.nodes.subdir_at_rev", "get_repo_nodes", repoid="hgmirror", revision="1",
      root_path="dir1"),
    c("hg.nodes.branch_files", "get_repo_nodes", repoid="hgmirror", revision="stable",
      root_path="", ret_type="files"),
    c("hg.changesets", "get_changesets", repoid="hgmirror"),
    c("hg.changesets.file_list", "get_changesets", repoid="hgmirror", with_file_list=True,
      reverse=True),
    c("hg.changesets.max2", "get_changesets", repoid="hgmirror", max_revisions=2),
    c("hg.changesets.start_end", "get_changesets", repoid="hgmirror", start=1, end="3"),
    c("hg.changesets.branch", "get_changesets", repoid="hgmirror", branch_name="stable"),
    c("hg.changeset", "get_changeset", repoid="hgmirror", raw_id="${hgnode1}"),
    c("hg.changeset.by_revision", "get_changeset", repoid="hgmirror", raw_id="4"),
    {"name": "hg.upstream_changeset", "do": one_more_hg_changeset},
    c("hg.pull.mirror", "pull", repoid="hgmirror"),
    c("hg.get.after_pull", "get_repo", repoid="hgmirror", with_revision_names=True),
    c("hg.changesets.after_pull", "get_changesets", repoid="hgmirror", start=4),
    c("hg.fork", "fork_repo", repoid="hgmirror", fork_name="hgfork"),
    c("hg.get.fork", "get_repo", repoid="hgfork"),
    c("hg.update.rename", "update_repo", repoid="hgfork", name="hgrenamed"),
    c("hg.get.renamed", "get_repo", repoid="hgrenamed", with_revision_names=True),
    c("hg.delete.renamed", "delete_repo", repoid="hgrenamed"),
    c("hg.delete.mirror", "delete_repo", repoid="hgmirror"),
    c("hg.delete.empty", "delete_repo", repoid="hgempty"),
]

STEPS: list[Step] = [*SERVER, *USERS_STEPS, *USER_GROUPS, *REPO_GROUPS, *REPOS, *MORE, *NOT_BUILT,
                     *ENVELOPE, *HG]

assert len({s["name"] for s in STEPS}) == len(STEPS), "step names must be unique"
