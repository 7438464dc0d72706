"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 22:07:18.504411
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=255), nullable=False),
        sa.Column("email", sa.String(length=255), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("firstname", sa.String(length=255), nullable=False),
        sa.Column("lastname", sa.String(length=255), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("admin", sa.Boolean(), nullable=False),
        sa.Column("extern_type", sa.String(length=255), nullable=False),
        sa.Column("extern_name", sa.String(length=255), nullable=False),
        sa.Column("created_on", sa.DateTime(), nullable=False),
        sa.Column("last_login", sa.DateTime(), nullable=True),
        sa.CheckConstraint("email = lower(email)", name=op.f("ck_users_email_lower")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_users_username"), ["username"], unique=False)
        # Usernames are unique regardless of case (alembic cannot autogenerate this one).
        batch_op.create_index("uq_users_username_lower", [sa.text("lower(username)")], unique=True)

    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("suffix", sa.String(length=8), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("created_on", sa.DateTime(), nullable=False),
        sa.Column("expires_on", sa.DateTime(), nullable=True),
        sa.Column("revoked_on", sa.DateTime(), nullable=True),
        sa.Column("last_used_on", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_api_keys_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("digest", name=op.f("uq_api_keys_digest")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_keys_user_id"), ["user_id"], unique=False)

    op.create_table(
        "global_permissions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_global_permissions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_global_permissions")),
        sa.UniqueConstraint("user_id", "name", name=op.f("uq_global_permissions_user_id_name")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("global_permissions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_global_permissions_user_id"), ["user_id"], unique=False
        )

    op.create_table(
        "repo_groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("created_on", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_repo_groups_owner_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["repo_groups.id"], name=op.f("fk_repo_groups_parent_id_repo_groups")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_repo_groups")),
        sa.UniqueConstraint("name", name=op.f("uq_repo_groups_name")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("repo_groups", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_repo_groups_owner_id"), ["owner_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_repo_groups_parent_id"), ["parent_id"], unique=False)

    op.create_table(
        "user_groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("created_on", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_user_groups_owner_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_groups")),
        sa.UniqueConstraint("name", name=op.f("uq_user_groups_name")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("user_groups", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_user_groups_owner_id"), ["owner_id"], unique=False)

    op.create_table(
        "user_ip_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("ip_addr", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_ip_rules_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_ip_rules")),
        sa.UniqueConstraint("user_id", "ip_addr", name=op.f("uq_user_ip_rules_user_id_ip_addr")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("user_ip_rules", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_user_ip_rules_user_id"), ["user_id"], unique=False)

    op.create_table(
        "repositories",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=True),
        sa.Column("repo_type", sa.String(length=8), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("private", sa.Boolean(), nullable=False),
        sa.Column("clone_uri", sa.String(length=2048), nullable=True),
        sa.Column("landing_rev", sa.String(length=255), nullable=False),
        sa.Column("enable_statistics", sa.Boolean(), nullable=False),
        sa.Column("enable_downloads", sa.Boolean(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("fork_of_id", sa.Integer(), nullable=True),
        sa.Column("created_on", sa.DateTime(), nullable=False),
        sa.Column("updated_on", sa.DateTime(), nullable=False),
        sa.Column("changeset_cache", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["fork_of_id"],
            ["repositories.id"],
            name=op.f("fk_repositories_fork_of_id_repositories"),
        ),
        sa.ForeignKeyConstraint(
            ["group_id"], ["repo_groups.id"], name=op.f("fk_repositories_group_id_repo_groups")
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_repositories_owner_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_repositories")),
        sa.UniqueConstraint("name", name=op.f("uq_repositories_name")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("repositories", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_repositories_fork_of_id"), ["fork_of_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_repositories_group_id"), ["group_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_repositories_owner_id"), ["owner_id"], unique=False)

    op.create_table(
        "user_group_members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["user_groups.id"],
            name=op.f("fk_user_group_members_group_id_user_groups"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_group_members_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_group_members")),
        sa.UniqueConstraint(
            "group_id", "user_id", name=op.f("uq_user_group_members_group_id_user_id")
        ),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("user_group_members", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_user_group_members_user_id"), ["user_id"], unique=False
        )

    op.create_table(
        "user_group_repo_group_perms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("repo_group_id", sa.Integer(), nullable=False),
        sa.Column(
            "level",
            sa.Enum(
                "NONE",
                "READ",
                "WRITE",
                "ADMIN",
                name="level",
                native_enum=False,
                create_constraint=True,
                length=8,
            ),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["user_groups.id"],
            name=op.f("fk_user_group_repo_group_perms_group_id_user_groups"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["repo_group_id"],
            ["repo_groups.id"],
            name=op.f("fk_user_group_repo_group_perms_repo_group_id_repo_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_group_repo_group_perms")),
        sa.UniqueConstraint(
            "group_id",
            "repo_group_id",
            name=op.f("uq_user_group_repo_group_perms_group_id_repo_group_id"),
        ),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("user_group_repo_group_perms", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_user_group_repo_group_perms_repo_group_id"),
            ["repo_group_id"],
            unique=False,
        )

    op.create_table(
        "user_group_user_group_perms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("target_group_id", sa.Integer(), nullable=False),
        sa.Column(
            "level",
            sa.Enum(
                "NONE",
                "READ",
                "WRITE",
                "ADMIN",
                name="level",
                native_enum=False,
                create_constraint=True,
                length=8,
            ),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["user_groups.id"],
            name=op.f("fk_user_group_user_group_perms_group_id_user_groups"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["target_group_id"],
            ["user_groups.id"],
            name=op.f("fk_user_group_user_group_perms_target_group_id_user_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_group_user_group_perms")),
        sa.UniqueConstraint(
            "group_id",
            "target_group_id",
            name=op.f("uq_user_group_user_group_perms_group_id_target_group_id"),
        ),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("user_group_user_group_perms", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_user_group_user_group_perms_target_group_id"),
            ["target_group_id"],
            unique=False,
        )

    op.create_table(
        "user_repo_group_perms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("repo_group_id", sa.Integer(), nullable=False),
        sa.Column(
            "level",
            sa.Enum(
                "NONE",
                "READ",
                "WRITE",
                "ADMIN",
                name="level",
                native_enum=False,
                create_constraint=True,
                length=8,
            ),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["repo_group_id"],
            ["repo_groups.id"],
            name=op.f("fk_user_repo_group_perms_repo_group_id_repo_groups"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_repo_group_perms_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_repo_group_perms")),
        sa.UniqueConstraint(
            "user_id", "repo_group_id", name=op.f("uq_user_repo_group_perms_user_id_repo_group_id")
        ),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("user_repo_group_perms", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_user_repo_group_perms_repo_group_id"), ["repo_group_id"], unique=False
        )

    op.create_table(
        "user_user_group_perms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("target_group_id", sa.Integer(), nullable=False),
        sa.Column(
            "level",
            sa.Enum(
                "NONE",
                "READ",
                "WRITE",
                "ADMIN",
                name="level",
                native_enum=False,
                create_constraint=True,
                length=8,
            ),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["target_group_id"],
            ["user_groups.id"],
            name=op.f("fk_user_user_group_perms_target_group_id_user_groups"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_user_group_perms_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_user_group_perms")),
        sa.UniqueConstraint(
            "user_id",
            "target_group_id",
            name=op.f("uq_user_user_group_perms_user_id_target_group_id"),
        ),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("user_user_group_perms", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_user_user_group_perms_target_group_id"),
            ["target_group_id"],
            unique=False,
        )

    op.create_table(
        "repo_followers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("repo_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["repo_id"],
            ["repositories.id"],
            name=op.f("fk_repo_followers_repo_id_repositories"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_repo_followers_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_repo_followers")),
        sa.UniqueConstraint("repo_id", "user_id", name=op.f("uq_repo_followers_repo_id_user_id")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("repo_followers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_repo_followers_user_id"), ["user_id"], unique=False)

    op.create_table(
        "user_group_repo_perms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("repo_id", sa.Integer(), nullable=False),
        sa.Column(
            "level",
            sa.Enum(
                "NONE",
                "READ",
                "WRITE",
                "ADMIN",
                name="level",
                native_enum=False,
                create_constraint=True,
                length=8,
            ),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["user_groups.id"],
            name=op.f("fk_user_group_repo_perms_group_id_user_groups"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["repo_id"],
            ["repositories.id"],
            name=op.f("fk_user_group_repo_perms_repo_id_repositories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_group_repo_perms")),
        sa.UniqueConstraint(
            "group_id", "repo_id", name=op.f("uq_user_group_repo_perms_group_id_repo_id")
        ),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("user_group_repo_perms", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_user_group_repo_perms_repo_id"), ["repo_id"], unique=False
        )

    op.create_table(
        "user_repo_perms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("repo_id", sa.Integer(), nullable=False),
        sa.Column(
            "level",
            sa.Enum(
                "NONE",
                "READ",
                "WRITE",
                "ADMIN",
                name="level",
                native_enum=False,
                create_constraint=True,
                length=8,
            ),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["repo_id"],
            ["repositories.id"],
            name=op.f("fk_user_repo_perms_repo_id_repositories"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_repo_perms_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_repo_perms")),
        sa.UniqueConstraint("user_id", "repo_id", name=op.f("uq_user_repo_perms_user_id_repo_id")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("user_repo_perms", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_user_repo_perms_repo_id"), ["repo_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("user_repo_perms", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_repo_perms_repo_id"))

    op.drop_table("user_repo_perms")
    with op.batch_alter_table("user_group_repo_perms", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_group_repo_perms_repo_id"))

    op.drop_table("user_group_repo_perms")
    with op.batch_alter_table("repo_followers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_repo_followers_user_id"))

    op.drop_table("repo_followers")
    with op.batch_alter_table("user_user_group_perms", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_user_group_perms_target_group_id"))

    op.drop_table("user_user_group_perms")
    with op.batch_alter_table("user_repo_group_perms", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_repo_group_perms_repo_group_id"))

    op.drop_table("user_repo_group_perms")
    with op.batch_alter_table("user_group_user_group_perms", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_group_user_group_perms_target_group_id"))

    op.drop_table("user_group_user_group_perms")
    with op.batch_alter_table("user_group_repo_group_perms", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_group_repo_group_perms_repo_group_id"))

    op.drop_table("user_group_repo_group_perms")
    with op.batch_alter_table("user_group_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_group_members_user_id"))

    op.drop_table("user_group_members")
    with op.batch_alter_table("repositories", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_repositories_owner_id"))
        batch_op.drop_index(batch_op.f("ix_repositories_group_id"))
        batch_op.drop_index(batch_op.f("ix_repositories_fork_of_id"))

    op.drop_table("repositories")
    with op.batch_alter_table("user_ip_rules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_ip_rules_user_id"))

    op.drop_table("user_ip_rules")
    with op.batch_alter_table("user_groups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_groups_owner_id"))

    op.drop_table("user_groups")
    with op.batch_alter_table("repo_groups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_repo_groups_parent_id"))
        batch_op.drop_index(batch_op.f("ix_repo_groups_owner_id"))

    op.drop_table("repo_groups")
    with op.batch_alter_table("global_permissions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_global_permissions_user_id"))

    op.drop_table("global_permissions")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_user_id"))

    op.drop_table("api_keys")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index("uq_users_username_lower")
        batch_op.drop_index(batch_op.f("ix_users_username"))

    op.drop_table("users")
