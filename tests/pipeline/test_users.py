"""Desk users: Argon2 hashes, sign-in, roles and what each may do, every change in the audit log.

Runs on SQLite and, when ECOUTE_TEST_PG is set, on PostgreSQL too.
"""
import pytest
import sqlalchemy as sa

from pipeline.store import Store
from pipeline.users import (ACTIONS, UserError, add_user, authenticate, can, disable_user, enable_user, get_user,
                            has_users, list_users, set_password, set_role, users)


@pytest.fixture
def store(backend_db):
    return Store(backend_db)


def test_a_user_signs_in_with_the_right_password_only_and_the_hash_is_argon2(store):
    assert not has_users(store)
    add_user(store, "ana", "agent", "correct horse battery")
    assert has_users(store)
    user = authenticate(store, "ana", "correct horse battery")
    assert (user.name, user.role, user.disabled) == ("ana", "agent", False)
    assert authenticate(store, "ana", "Correct horse battery") is None
    assert authenticate(store, "nobody", "correct horse battery") is None
    with store.engine.connect() as c:
        digest = c.scalar(sa.select(users.c.password_hash).where(users.c.name == "ana"))
    assert digest.startswith("$argon2id$") and "correct horse" not in digest


def test_a_disabled_user_cannot_sign_in_until_enabled_again(store):
    add_user(store, "bo", "marketing", "s3cret-pass")
    disable_user(store, "bo", actor="root")
    assert authenticate(store, "bo", "s3cret-pass") is None and get_user(store, "bo").disabled
    assert not get_user(store, "bo").can("view_trends")
    enable_user(store, "bo", actor="root")
    assert authenticate(store, "bo", "s3cret-pass").role == "marketing"


def test_names_are_unique_roles_are_checked_and_empty_passwords_refused(store):
    add_user(store, "ana", "agent", "pw-one")
    with pytest.raises(UserError, match="already exists"):
        add_user(store, "ana", "admin", "pw-two")
    with pytest.raises(UserError, match="role must be one of agent, marketing, admin, got 'boss'"):
        add_user(store, "cy", "boss", "pw")
    with pytest.raises(UserError, match="password is empty"):
        add_user(store, "cy", "agent", "  ")
    with pytest.raises(UserError, match="no user 'zed'"):
        disable_user(store, "zed")
    assert [u.name for u in list_users(store)] == ["ana"]


def test_an_oidc_only_user_has_no_password_to_guess(store):
    add_user(store, "dee@example.com", "admin", None)
    assert get_user(store, "dee@example.com").role == "admin"
    assert authenticate(store, "dee@example.com", "") is None
    assert authenticate(store, "dee@example.com", "anything") is None


def test_role_changes_and_password_resets_apply(store):
    add_user(store, "ana", "agent", "old-pass")
    set_role(store, "ana", "admin", actor="root")
    set_password(store, "ana", "new-pass", actor="root")
    assert authenticate(store, "ana", "old-pass") is None
    assert authenticate(store, "ana", "new-pass").role == "admin"


def test_every_user_change_and_sign_in_is_audited_without_the_password(store):
    add_user(store, "ana", "agent", "hunter2-long", actor="root")
    authenticate(store, "ana", "hunter2-long")
    authenticate(store, "ana", "wrong")
    disable_user(store, "ana", actor="root")
    audit = store.audit()
    assert list(audit["action"])[::-1] == ["user_add", "sign_in", "sign_in_failed", "user_disable"]
    assert list(audit["actor"])[::-1] == ["root", "ana", "ana", "root"]
    assert "wrong password" in audit["detail"].iloc[1]
    assert not audit["detail"].fillna("").str.contains("hunter2").any()


def test_what_each_role_may_do():
    desk = {"claim", "reply", "resolve", "dismiss", "note", "reassign"}
    views = {"view_queue", "view_trends", "view_alerts"}
    admin_only = {"change_rules", "erase", "manage_users"}
    assert set(ACTIONS) == desk | views | admin_only
    assert {a for a in ACTIONS if can("agent", a)} == desk | views
    assert {a for a in ACTIONS if can("marketing", a)} == views
    assert {a for a in ACTIONS if can("admin", a)} == set(ACTIONS)
    assert not can("stranger", "view_queue")
    with pytest.raises(ValueError, match="unknown action 'fly'"):
        can("admin", "fly")
