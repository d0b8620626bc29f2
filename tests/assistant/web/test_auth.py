"""Users, roles and password hashes: files, the env variable, the CLI, and what never leaks."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import httpx
import pytest
from gradio_client import Client

from assistant.core.errors import DataError
from assistant.web.access import EXPORT_PATH
from assistant.web.auth import (
    USERS_ENV,
    Users,
    UsersFile,
    hash_password,
    load_users,
    main,
    role_at_least,
    save_users,
    verify_password,
)
from tests.conftest import ROOT, TEST_USERS, launch, make_users


def test_hash_is_salted_scrypt_and_verifies():
    a, b = hash_password("s3cret-pass"), hash_password("s3cret-pass")
    assert a != b and a.startswith("scrypt$16384$8$1$")
    assert verify_password("s3cret-pass", a) and verify_password("s3cret-pass", b)
    assert not verify_password("s3cret-pass ", a) and not verify_password("", a)
    assert "s3cret-pass" not in a


@pytest.mark.parametrize(
    "role, needed, allowed",
    [
        ("admin", "reviewer", True), ("admin", "staff", True), ("reviewer", "reviewer", True),
        ("reviewer", "admin", False), ("staff", "reviewer", False), ("staff", "staff", True),
        (None, "staff", False), ("root", "staff", False),
    ],
)
def test_roles_nest(role, needed, allowed):
    assert role_at_least(role, needed) is allowed


def test_users_from_env_variable():
    env = {USERS_ENV: f"alice:reviewer:{hash_password('pass-alice')}, bob:staff:{hash_password('pass-bob1')}"}
    users = load_users(None, env=env)
    assert users.authenticate("alice", "pass-alice") and users.authenticate("bob", "pass-bob1")
    assert not users.authenticate("alice", "pb") and not users.authenticate("carol", "pa")
    assert (users.role_of("alice"), users.role_of("bob"), users.role_of("carol"), users.role_of(None)) == (
        "reviewer", "staff", None, None)


@pytest.mark.parametrize("suffix", [".json", ".toml"])
def test_users_file_round_trip(tmp_path, suffix):
    from assistant.web.auth import save_users

    path = tmp_path / f"users{suffix}"
    save_users(Users().with_user("ann", "admin", "password-1").with_user("rita", "reviewer", "password-2"), path)
    users = load_users(path, env={})
    assert users.authenticate("ann", "password-1") and users.role_of("rita") == "reviewer"
    assert path.stat().st_mode & 0o077 == 0  # owner-only: the file holds hashes


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"users": [{"name": "a", "role": "boss", "password_hash": "HASH"}]}', "role 'boss'"),
        ('{"users": [{"name": "a b", "role": "staff", "password_hash": "HASH"}]}', "user name"),
        ('{"users": [{"name": "a", "role": "staff"}]}', "needs name, role and password_hash"),
        ('{"users": [{"name": "a", "role": "staff", "password_hash": "plaintext-pw"}]}', "scrypt"),
        ('{"users": ', "cannot be read"),
        # were a TypeError or an AttributeError
        ('{"users": [{"name": 7, "role": "staff", "password_hash": "HASH"}]}', "user name 7"),
        ('{"users": [{"name": "a", "role": "staff", "password_hash": 7}]}', "scrypt"),
        ('{"users": {"a": 7}}', "user 1 needs name, role and password_hash"),
    ],
)
def test_bad_users_files_name_the_problem(tmp_path, content, message):
    path = tmp_path / "users.json"
    path.write_text(content.replace("HASH", hash_password("xxxxxxxx")))
    with pytest.raises(DataError, match=message) as err:
        load_users(path, env={})
    assert "plaintext-pw" not in str(err.value)  # a pasted password is never echoed


@pytest.mark.parametrize("value", ["alice:staff", "alice:boss:x", "alice:staff:not-a-hash"])
def test_bad_env_entries(value):
    with pytest.raises(DataError):
        load_users(None, env={USERS_ENV: value})


def test_user_repr_hides_the_hash():
    users = Users().with_user("ann", "admin", "pw-secret")
    assert "scrypt" not in repr(users) and "pw-secret" not in repr(users.users["ann"]).replace("password_hash", "")


def test_cli_add_user_with_password_stdin(tmp_path):
    path = tmp_path / "users.json"
    for name, role, pw in (("ann", "admin", "first-password"), ("bob", "staff", "second-password")):
        run = subprocess.run(
            [sys.executable, "-m", "assistant.web.auth", "add-user", name, "--role", role, "--file", str(path),
             "--password-stdin"], input=pw + "\n", capture_output=True, text=True, cwd=ROOT, check=True,
        )
        assert pw not in run.stdout + run.stderr
    data = json.loads(path.read_text())
    assert [u["name"] for u in data["users"]] == ["ann", "bob"]
    users = load_users(path, env={})
    assert users.authenticate("ann", "first-password") and users.role_of("bob") == "staff"


def test_cli_hash_password_output_works_in_env(capsys, monkeypatch):
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO("password\n"))
    assert main(["hash-password", "--password-stdin"]) == 0
    hashed = capsys.readouterr().out.strip()
    assert load_users(None, env={USERS_ENV: f"zed:admin:{hashed}"}).authenticate("zed", "password")


@pytest.mark.parametrize(
    "argv, stdin, message",
    [
        (["list", "--file", "missing.json"], "", "users file missing.json does not exist"),
        (["hash-password", "--password-stdin"], "\n", "the password has 0 characters; use at least 8"),
        (["add-user", "bob", "--file", "u.json", "--password-stdin"], "x\n", "the password has 1 characters; use at least 8"),
        (["add-user", "a b", "--file", "u.json", "--password-stdin"], "password\n", "user name 'a b'"),
    ],
)
def test_cli_errors_are_one_line_and_status_2(tmp_path, capsys, monkeypatch, argv, stdin, message):
    import io

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "u.json").exists()


# -- issue 25.3: credential changes count from the next request, no restart ---------------------------------


def _cli(*argv: str, password: str | None = None) -> subprocess.CompletedProcess:
    """`python -m assistant.web.auth ...` as an admin runs it, beside the running app."""
    return subprocess.run([sys.executable, "-m", "assistant.web.auth", *argv], input=password and password + "\n",
                          capture_output=True, text=True, cwd=ROOT, check=True, timeout=120)


def _running_on_file(tmp_path, users: Users):
    """The app started the way `app.py --users FILE` starts it, on a users file holding `users`."""
    import app as entry

    path = tmp_path / "users.json"
    save_users(users, path)
    return path, launch(tmp_path / "data", users=entry._users(path))


def test_a_key_revoked_with_the_cli_is_refused_by_the_running_app_at_once(tmp_path):
    users, key = make_users().with_new_key("sam", "2026-12-01T00:00:00+00:00")
    path, running = _running_on_file(tmp_path, users)
    try:
        http = httpx.Client(base_url=running.url, timeout=30, headers={"authorization": f"Bearer {key}"})
        assert http.get("v1/models").status_code == 200
        _cli("revoke-key", "sam", key[:9], "--file", str(path))
        refused = http.get("v1/models")
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
        fresh = _cli("add-key", "sam", "--file", str(path)).stdout.strip().splitlines()[-1]
        assert httpx.get(running.url + "v1/models", headers={"authorization": f"Bearer {fresh}"}).status_code == 200
    finally:
        running.demo.close()


def test_a_password_changed_with_the_cli_counts_at_the_next_sign_in_and_ends_open_sessions(tmp_path):
    path, running = _running_on_file(tmp_path, make_users())
    try:
        def sign_in(password: str) -> int:
            return httpx.post(running.url + "login", data={"username": "sam", "password": password}).status_code

        assert sign_in(TEST_USERS["sam"][1]) == 200
        session = httpx.Client(base_url=running.url, timeout=30)
        session.post("login", data={"username": "sam", "password": TEST_USERS["sam"][1]}).raise_for_status()
        assert session.get(EXPORT_PATH.lstrip("/")).status_code == 403  # signed in, as staff
        _cli("add-user", "sam", "--role", "reviewer", "--file", str(path), "--password-stdin",
             password="a-new-password")
        assert session.get(EXPORT_PATH.lstrip("/")).status_code == 401  # the old password's session ended
        assert sign_in(TEST_USERS["sam"][1]) == 400
        assert sign_in("a-new-password") == 200
        client = Client(running.url, auth=("sam", "a-new-password"), verbose=False)
        assert client.predict("open", "all", api_name="/review_queue") == []  # the new role, too
    finally:
        running.demo.close()


def test_a_users_file_that_cannot_be_used_keeps_the_users_read_before_and_says_so_once(tmp_path, caplog):
    path = tmp_path / "users.json"
    save_users(make_users(), path)
    live = UsersFile(path, env={})
    with caplog.at_level(logging.ERROR, logger="calibrated_chat"):
        for broken in ('{"users": [', '{"users": [{"name": "sam"}]}'):
            path.write_text(broken)
            assert live.authenticate("sam", TEST_USERS["sam"][1]) and live.role_of("ann") == "admin"
            assert live.role_of("rita") == "reviewer" and len(live) == 3
        path.unlink()
        assert live.authenticate("ann", TEST_USERS["ann"][1])
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3, lines  # one line per bad version of the file, not one per request
    assert all("the 3 users read before stay in force" in line for line in lines)
    assert "cannot be read" in lines[0] and "needs name, role and password_hash" in lines[1]
    assert "does not exist" in lines[2]
    save_users(make_users().with_user("zoe", "staff", "zoe-password"), path)
    assert live.authenticate("zoe", "zoe-password") and len(live) == 4
