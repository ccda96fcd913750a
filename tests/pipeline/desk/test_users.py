"""Desk users: Argon2 hashes, sign-in, roles and what each may do, every change in the audit log.

Runs on SQLite and, when ECOUTE_TEST_PG is set, on PostgreSQL too.
"""
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

import pipeline.desk.users as users_module
from pipeline.store import Store
from pipeline.desk.users import (ACTIONS, FORGET_AFTER, FREE_FAILURES, MAX_DELAY, MIN_PASSWORD_LENGTH, SignInThrottled,
                            UserError, add_user, authenticate, can, disable_user, enable_user, get_user, has_users,
                            list_users, set_password, set_role, users)


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
    add_user(store, "bo", "marketing", "s3cret-pass-long")
    disable_user(store, "bo", actor="root")
    assert authenticate(store, "bo", "s3cret-pass-long") is None and get_user(store, "bo").disabled
    assert not get_user(store, "bo").can("view_trends")
    enable_user(store, "bo", actor="root")
    assert authenticate(store, "bo", "s3cret-pass-long").role == "marketing"


def test_names_are_unique_roles_are_checked_and_empty_passwords_refused(store):
    add_user(store, "ana", "agent", "pw-one-long-enough")
    with pytest.raises(UserError, match="already exists"):
        add_user(store, "ana", "admin", "pw-two-long-enough")
    with pytest.raises(UserError, match="role must be one of agent, marketing, admin, got 'boss'"):
        add_user(store, "cy", "boss", "pw-long-enough")
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
    add_user(store, "ana", "agent", "old-pass-long-enough")
    set_role(store, "ana", "admin", actor="root")
    set_password(store, "ana", "new-pass-long-enough", actor="root")
    assert authenticate(store, "ana", "old-pass-long-enough") is None
    assert authenticate(store, "ana", "new-pass-long-enough").role == "admin"


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


# -- sign-in throttling, password minimum, sessions ended by a password change --------------------

class Clock:
    """The time users.py reads, moved by hand so that no test waits."""

    def __init__(self, monkeypatch):
        self.now = datetime(2026, 12, 1, 9, 0)
        monkeypatch.setattr(users_module, "utcnow", lambda: self.now)

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch):
    return Clock(monkeypatch)


def guess(store, name, client, times, password="not the password"):
    for _ in range(times):
        assert authenticate(store, name, password, client=client) is None


def test_repeated_wrong_passwords_make_the_next_try_wait_then_a_right_one_signs_in(store, clock):
    add_user(store, "ana", "agent", "correct horse battery")
    guess(store, "ana", "10.0.0.9", FREE_FAILURES)
    with pytest.raises(SignInThrottled) as waited:
        authenticate(store, "ana", "correct horse battery", client="10.0.0.9")
    assert waited.value.seconds == 1
    clock.advance(seconds=1)
    assert authenticate(store, "ana", "correct horse battery", client="10.0.0.9").name == "ana"
    guess(store, "ana", "10.0.0.9", FREE_FAILURES)        # the success forgot the earlier failures
    clock.advance(seconds=1)
    assert authenticate(store, "ana", "correct horse battery", client="10.0.0.9") is not None


def test_the_wait_doubles_is_capped_and_an_attacker_hammering_cannot_lock_the_user_out_longer(store, clock):
    add_user(store, "ana", "agent", "correct horse battery")
    waits = []
    for _ in range(30):
        try:
            guess(store, "ana", "203.0.113.7", 1)
        except SignInThrottled as exc:
            waits.append(exc.seconds)
            clock.advance(seconds=exc.seconds)
            guess(store, "ana", "203.0.113.7", 1)         # the wait is over: this one is checked, and wrong
    assert waits[:5] == [1, 2, 4, 8, 16] and waits[-1] == max(waits) == MAX_DELAY.total_seconds()
    for _ in range(100):                                   # refused unchecked and uncounted: the wait stays
        with pytest.raises(SignInThrottled) as waited:
            authenticate(store, "ana", "correct horse battery", client="203.0.113.7")
        assert waited.value.seconds == MAX_DELAY.total_seconds()
    clock.advance(seconds=MAX_DELAY.total_seconds())
    assert authenticate(store, "ana", "correct horse battery", client="198.51.100.2").name == "ana"


def test_a_client_guessing_many_names_is_slowed_but_other_clients_are_not(store, clock):
    add_user(store, "ana", "agent", "correct horse battery")
    for n in range(FREE_FAILURES):
        guess(store, f"user{n}", "203.0.113.7", 1)
    with pytest.raises(SignInThrottled):
        authenticate(store, "someone-else", "x" * 12, client="203.0.113.7")
    assert authenticate(store, "ana", "correct horse battery", client="198.51.100.2").name == "ana"


def test_failures_are_forgotten_after_a_while_and_shared_by_every_process(store, backend_db, clock):
    add_user(store, "ana", "agent", "correct horse battery")
    guess(store, "ana", "10.0.0.1", FREE_FAILURES)
    other_process = Store(backend_db)                      # a second dashboard on the same database
    with pytest.raises(SignInThrottled):
        authenticate(other_process, "ana", "correct horse battery", client="10.0.0.2")
    clock.advance(seconds=FORGET_AFTER.total_seconds())
    guess(other_process, "ana", "10.0.0.1", FREE_FAILURES - 1)   # a fresh allowance
    assert authenticate(store, "ana", "correct horse battery", client="10.0.0.1").name == "ana"


def test_each_failed_and_throttled_sign_in_is_audited_with_its_client_never_the_password(store, clock):
    add_user(store, "ana", "agent", "correct horse battery")
    guess(store, "ana", "10.0.0.9", FREE_FAILURES, password="tr0ub4dor&3")
    with pytest.raises(SignInThrottled):
        authenticate(store, "ana", "tr0ub4dor&3", client="10.0.0.9")
    audit = store.audit()
    failed = audit[audit["action"] == "sign_in_failed"]
    assert len(failed) == FREE_FAILURES + 1 and set(failed["actor"]) == {"ana"}
    assert failed["detail"].str.contains("10.0.0.9").all() and failed["detail"].iloc[0].count("throttled") == 1
    assert not audit["detail"].fillna("").str.contains("tr0ub4dor").any()


def test_passwords_shorter_than_the_minimum_are_refused(store):
    assert MIN_PASSWORD_LENGTH == 12
    with pytest.raises(UserError, match="at least 12 characters"):
        add_user(store, "ana", "agent", "elevenchars")
    add_user(store, "ana", "agent", "twelve chars")
    with pytest.raises(UserError, match="at least 12 characters"):
        set_password(store, "ana", "short")
    assert authenticate(store, "ana", "twelve chars").name == "ana"


def test_a_password_change_moves_the_users_session_generation(store):
    add_user(store, "ana", "agent", "correct horse battery")
    before = get_user(store, "ana").generation
    set_password(store, "ana", "a new correct horse", actor="root")
    assert get_user(store, "ana").generation == before + 1


@pytest.mark.parametrize("name", ["a" * 121, "x" * 5000, "ana\x00", "ana\u202e", "\x07"])
def test_an_over_long_or_odd_name_is_a_plain_failed_sign_in(store, name):
    """On PostgreSQL a 121-character name used to raise from the audit insert, SQL and all."""
    add_user(store, "ana", "agent", "correct horse battery")
    assert authenticate(store, name, "correct horse battery", client="10.0.0.9") is None
    last = store.audit().iloc[0]
    assert last["action"] == "sign_in_failed" and len(last["actor"]) <= 120 and "\x00" not in last["actor"]


def test_names_over_120_characters_or_with_control_characters_cannot_be_added(store):
    with pytest.raises(UserError, match="at most 120 characters"):
        add_user(store, "a" * 121, "agent", "correct horse battery")
    with pytest.raises(UserError, match="control"):
        add_user(store, "ana\u202eevil", "agent", "correct horse battery")
    add_user(store, "a" * 120, "agent", "correct horse battery")


def test_an_attacker_keeping_a_name_throttled_cannot_lock_its_user_out_of_a_client_she_used(store, clock):
    """One wrong guess every MAX_DELAY would keep a name waiting for ever; the per-name wait does not
    apply where the user signed in successfully before (OWASP: known devices), the per-client one does."""
    add_user(store, "ana", "agent", "correct horse battery")
    assert authenticate(store, "ana", "correct horse battery", client="198.51.100.2").name == "ana"   # her office
    clock.advance(days=3)
    for _ in range(12):
        try:
            guess(store, "ana", "203.0.113.7", 1)
        except SignInThrottled as exc:
            clock.advance(seconds=exc.seconds)
            guess(store, "ana", "203.0.113.7", 1)             # the wait is over: one more wrong guess
    with pytest.raises(SignInThrottled):                      # a new place waits for the name's count
        authenticate(store, "ana", "correct horse battery", client="192.0.2.44")
    assert authenticate(store, "ana", "correct horse battery", client="198.51.100.2").name == "ana"
    with pytest.raises(SignInThrottled):                      # the attacker's own address still waits
        authenticate(store, "ana", "correct horse battery", client="203.0.113.7")
