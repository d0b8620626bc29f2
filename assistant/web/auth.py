"""Users, roles and password hashes for the web app.

Roles nest: admin ⊇ reviewer ⊇ staff. Staff chat; reviewers also work the
review queue and export verdicts; admins also see the dashboard and reload maps.

Users come from a JSON or TOML file (`--users FILE`) or from the environment
variable `CALIBRATED_CHAT_USERS` ("alice:reviewer:<hash>,bob:staff:<hash>").
A running app reads its users file through `UsersFile`, which reads it again as soon as it
changes: a new password, a new role or a revoked API key counts from the next request.
Passwords are stored only as salted scrypt hashes
(`scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>`), compared in constant time.
API keys (for the OpenAI-compatible endpoint, `assistant.web.openai_api`) are 256 random
bits shown once when made; the file keeps their SHA-256 and first characters only.

    python -m assistant.web.auth add-user alice --role reviewer --file users.json   # prompts for the password
    echo secret | python -m assistant.web.auth add-user bob --file users.json --password-stdin
    python -m assistant.web.auth hash-password --password-stdin   # prints a hash for the env variable
    python -m assistant.web.auth add-key alice --file users.json          # prints a new key, once
    python -m assistant.web.auth revoke-key alice cc-Xy12ab --file users.json

File formats:

    {"users": [{"name": "alice", "role": "reviewer", "password_hash": "scrypt$...",
                "api_keys": [{"prefix": "cc-Xy12ab", "sha256": "...", "created_at": "..."}]}]}

    [users.alice]
    role = "reviewer"
    password_hash = "scrypt$..."
    api_keys = [{prefix = "cc-Xy12ab", sha256 = "...", created_at = "..."}]
"""

from __future__ import annotations

import argparse
import getpass
import hmac
import json
import logging
import os
import re
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from assistant.core.errors import CalibratedChatError, DataError, InputError, run_cli
from assistant.core.files import atomic_write
from assistant.core.validate import Rule, check, is_object, missing
from assistant.web.passwords import (
    API_KEY_START,
    MIN_PASSWORD_CHARS,
    check_hash_format,
    hash_password,
    key_digest,
    new_api_key,
    verify_password,
)

try:
    import tomllib
except ImportError:  # Python 3.10: JSON users files only
    tomllib = None

__all__ = [
    "ROLES",
    "USERS_ENV",
    "MIN_PASSWORD_CHARS",
    "User",
    "Users",
    "UsersFile",
    "hash_password",
    "verify_password",
    "load_users",
    "save_users",
    "role_at_least",
    "new_api_key",
    "main",
]

ROLES = ("staff", "reviewer", "admin")  # in order: each role has every right of those before it
USERS_ENV = "CALIBRATED_CHAT_USERS"
_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
_PREFIX_CHARS = 9  # "cc-" and 6 more: enough to tell a user's keys apart, far too few to guess one
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

log = logging.getLogger("calibrated_chat.auth")


def role_at_least(role: str | None, needed: str) -> bool:
    """True when `role` includes the rights of `needed` (admin ⊇ reviewer ⊇ staff)."""
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)


@dataclass(frozen=True)
class User:
    name: str  # login name (letters, digits, _ . @ -)
    role: str  # "staff", "reviewer" or "admin"
    password_hash: str = field(repr=False)  # scrypt hash; never logged (repr hides it)
    api_keys: tuple = field(default=(), repr=False)  # {"prefix", "sha256", "created_at"} per key


@dataclass(frozen=True)
class Users:
    """The known users; `authenticate` works as Gradio's `auth=` callable."""

    users: dict = field(default_factory=dict)  # name -> User

    def __bool__(self) -> bool:
        return bool(self.users)

    def __len__(self) -> int:
        return len(self.users)

    def authenticate(self, name: str, password: str) -> bool:
        """True when the name is known and the password matches."""
        user = self.users.get(name)
        if user is None:
            # Spend the same time on unknown names, so timing does not reveal which names exist.
            verify_password(password or "", _DUMMY_HASH)
            return False
        return verify_password(password or "", user.password_hash)

    __call__ = authenticate

    def role_of(self, name: str | None) -> str | None:
        """The user's role, or None for an unknown user."""
        user = self.users.get(name) if name is not None else None
        return user.role if user else None

    def with_user(self, name: str, role: str, password: str) -> "Users":
        """A copy with one user added or replaced (a replaced user keeps their API keys)."""
        _validate(name, role)
        keys = self.users[name].api_keys if name in self.users else ()
        return Users({**self.users, name: User(name, role, hash_password(password), keys)})

    def user_of_key(self, key: str | None) -> str | None:
        """The user an API key belongs to; None for an unknown or malformed key."""
        if not isinstance(key, str) or not key.startswith(API_KEY_START):
            return None
        digest = key_digest(key)
        found = None
        for user in self.users.values():  # every key compared, in constant time each
            for entry in user.api_keys:
                if hmac.compare_digest(entry["sha256"], digest):
                    found = user.name
        return found

    def with_new_key(self, name: str, created_at: str) -> tuple["Users", str]:
        """A copy where `name` has one more API key, and that key (shown once; only its hash is kept)."""
        user = self._known(name)
        key = new_api_key()
        entry = {"prefix": key[:_PREFIX_CHARS], "sha256": key_digest(key), "created_at": created_at}
        return Users({**self.users, name: User(user.name, user.role, user.password_hash,
                                               (*user.api_keys, entry))}), key

    def without_key(self, name: str, prefix: str) -> "Users":
        """A copy where `name`'s keys starting with `prefix` are revoked; InputError when none does."""
        user = self._known(name)
        kept = tuple(k for k in user.api_keys if not (prefix and k["prefix"].startswith(prefix)))
        if len(kept) == len(user.api_keys):
            raise InputError(f"user {name!r} has no API key starting {prefix!r}: "
                             "`python -m assistant.web.auth list` shows their key prefixes")
        return Users({**self.users, name: User(user.name, user.role, user.password_hash, kept)})

    def _known(self, name: str) -> User:
        if name not in self.users:
            raise InputError(f"no user {name!r} in the users file: add them first with add-user")
        return self.users[name]


_DUMMY_HASH = hash_password("not a real password", salt=b"\0" * 16)


# A user's name and role, from the users file or the environment variable.
_USER_RULES = {
    "name": Rule(lambda v: isinstance(v, str) and bool(_NAME.match(v)),
                 "user name {value} must be 1–64 letters, digits, or _ . @ -"),
    "role": Rule(lambda v: v in ROLES, f"user {{data[name]!r}} has role {{value}}; roles are {', '.join(ROLES)}"),
}
_KEY = Rule(lambda k: is_object(k) and isinstance(k.get("prefix"), str) and bool(_SHA256.match(str(k.get("sha256", "")))),
            "needs a prefix and a sha256 (64 hex digits); make keys with `python -m assistant.web.auth add-key`")


def _validate(name: str, role: str, where: str = "") -> None:
    check({"name": name, "role": role}, _USER_RULES, lambda _, problem: _fail(f"{where}{problem}"))


def _fail(message: str):
    raise DataError(message)


def _parse_env(value: str) -> dict[str, User]:
    users = {}
    for n, entry in enumerate(filter(None, (e.strip() for e in value.split(","))), start=1):
        parts = entry.split(":")
        if len(parts) != 3:
            raise DataError(f"{USERS_ENV} entry {n} is not `name:role:hash`")
        name, role, hashed = parts
        _validate(name, role, f"{USERS_ENV}: ")
        check_hash_format(hashed)
        users[name] = User(name, role, hashed)
    return users


def _parse_file(path: Path) -> dict[str, User]:
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".toml" and tomllib is None:
            raise DataError(f"users file {path}: TOML needs Python 3.11+; use a .json file")
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except FileNotFoundError as err:
        raise DataError(f"users file {path} does not exist") from err
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise DataError(f"users file {path} cannot be read: {err}") from err
    entries = data.get("users", []) if isinstance(data, dict) else None
    if isinstance(entries, dict):  # TOML tables: [users.alice]
        entries = [{"name": name, **fields} if is_object(fields) else fields for name, fields in entries.items()]
    if not isinstance(entries, list):
        raise DataError(f"users file {path}: `users` must be a list (JSON) or tables (TOML)")
    users = {}
    for n, entry in enumerate(entries, start=1):
        if not is_object(entry) or missing(entry, ("name", "role", "password_hash")):
            raise DataError(f"users file {path}: user {n} needs name, role and password_hash")
        _validate(entry["name"], entry["role"], f"users file {path}: ")
        check_hash_format(entry["password_hash"])
        keys = _parse_keys(entry.get("api_keys", []), f"users file {path}: user {entry['name']!r}")
        users[entry["name"]] = User(entry["name"], entry["role"], entry["password_hash"], keys)
    return users


def _parse_keys(entries, where: str) -> tuple[dict, ...]:
    if not isinstance(entries, list):
        raise DataError(f"{where}: `api_keys` must be a list")
    for n, key in enumerate(entries, start=1):
        if not _KEY.test(key):
            raise DataError(f"{where}: API key {n} {_KEY.problem}")
    return tuple({"prefix": k["prefix"], "sha256": k["sha256"], "created_at": str(k.get("created_at", ""))}
                 for k in entries)


def load_users(path: Path | None = None, env: dict | None = None) -> Users:
    """Users from `path` and/or `CALIBRATED_CHAT_USERS` (entries in the variable win); empty when neither."""
    env = os.environ if env is None else env
    users: dict[str, User] = {}
    if path is not None:
        users.update(_parse_file(Path(path)))
    if env.get(USERS_ENV):
        users.update(_parse_env(env[USERS_ENV]))
    return Users(users)


class UsersFile:
    """The users of a running app, read again from their file whenever it changes.

    Every use (a sign-in, a role check, an API key) first looks at the file's (mtime, size,
    inode): one `stat`, microseconds. When that changed, the file is parsed again. A file
    that cannot be used (half-written, bad JSON, missing) keeps the users last read and is
    logged once: a broken edit never signs everyone out, nor lets anyone in. It offers what
    `Users` offers, so the app takes either.
    """

    def __init__(self, path: Path, env: dict | None = None):
        """Reads the file now: a DataError here (a bad file at start-up) stops the app with its reason."""
        self.path = Path(path)
        self._env = dict(os.environ if env is None else env)
        self._lock = threading.Lock()
        self._seen = self._signature()
        self._users = load_users(self.path, self._env)

    def _signature(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size, st.st_ino

    def current(self) -> Users:
        """The users as the file says now (or as it last said, while it cannot be used)."""
        signature = self._signature()
        if signature != self._seen:
            with self._lock:
                if signature != self._seen:
                    self._reread(signature)
        return self._users

    def _reread(self, signature: tuple[int, int, int] | None) -> None:
        self._seen = signature  # stat before read: a change during the read is seen on the next request
        try:
            users = load_users(self.path, self._env)
        except CalibratedChatError as err:
            log.error("users file changed but cannot be used, so the %d users read before stay in force "
                      "until it is fixed: %s", len(self._users), err)
            return
        log.info("users file %s read again: %d users", self.path, len(users))
        self._users = users

    @property
    def users(self) -> dict:
        return self.current().users

    def __bool__(self) -> bool:
        return bool(self.current())

    def __len__(self) -> int:
        return len(self.current())

    def authenticate(self, name: str, password: str) -> bool:
        return self.current().authenticate(name, password)

    __call__ = authenticate

    def role_of(self, name: str | None) -> str | None:
        return self.current().role_of(name)

    def user_of_key(self, key: str | None) -> str | None:
        return self.current().user_of_key(key)


def save_users(users: Users, path: Path) -> None:
    """Write users as JSON (or TOML for a .toml path), atomically, readable by the owner only."""
    if path.suffix == ".toml":
        text = "".join(
            f'[users."{u.name}"]\nrole = "{u.role}"\npassword_hash = "{u.password_hash}"\n'
            + (f"api_keys = [{', '.join(_toml_table(k) for k in u.api_keys)}]\n" if u.api_keys else "") + "\n"
            for u in users.users.values()
        )
    else:
        body = [{"name": u.name, "role": u.role, "password_hash": u.password_hash}
                | ({"api_keys": list(u.api_keys)} if u.api_keys else {}) for u in users.users.values()]
        text = json.dumps({"users": body}, indent=2) + "\n"
    atomic_write(text, Path(path), mode=0o600)


def _toml_table(entry: dict) -> str:
    return "{" + ", ".join(f"{k} = {json.dumps(v)}" for k, v in entry.items()) + "}"


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Repeat password: "):
        raise InputError("the passwords differ")
    return first


def main(argv: list[str] | None = None) -> int:
    """`python -m assistant.web.auth add-user|hash-password|list`."""
    parser = argparse.ArgumentParser(prog="python -m assistant.web.auth", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add-user", help="add or replace a user in a users file")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, default="staff")
    add.add_argument("--file", type=Path, default=Path("users.json"), help="users file (.json or .toml)")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    hp = sub.add_parser("hash-password", help="print a hash for CALIBRATED_CHAT_USERS")
    hp.add_argument("--password-stdin", action="store_true")
    ls = sub.add_parser("list", help="list users, roles and API key prefixes (never hashes)")
    ls.add_argument("--file", type=Path, default=Path("users.json"))
    key = sub.add_parser("add-key", help="make an API key for a user (printed once; the file keeps its hash)")
    key.add_argument("name")
    key.add_argument("--file", type=Path, default=Path("users.json"))
    revoke = sub.add_parser("revoke-key", help="revoke a user's API keys that start with PREFIX")
    revoke.add_argument("name")
    revoke.add_argument("prefix")
    revoke.add_argument("--file", type=Path, default=Path("users.json"))
    args = parser.parse_args(argv)
    return run_cli(lambda: _command(args))


def _command(args: argparse.Namespace) -> None:
    if args.command == "hash-password":
        print(hash_password(_read_password(args.password_stdin)))
    elif args.command == "add-user":
        current = load_users(args.file, env={}) if args.file.exists() else Users()
        save_users(current.with_user(args.name, args.role, _read_password(args.password_stdin)), args.file)
        print(f"{args.name} ({args.role}) saved in {args.file}")
    elif args.command == "add-key":
        users, key = load_users(args.file, env={}).with_new_key(args.name, _now())
        save_users(users, args.file)
        print(f"API key for {args.name} (shown once; {args.file} keeps only its hash):\n{key}")
    elif args.command == "revoke-key":
        save_users(load_users(args.file, env={}).without_key(args.name, args.prefix), args.file)
        print(f"revoked {args.name}'s API keys starting {args.prefix!r}")
    else:
        for user in load_users(args.file, env={}).users.values():
            keys = " ".join(k["prefix"] + "…" for k in user.api_keys)
            print(f"{user.name}\t{user.role}" + (f"\tAPI keys: {keys}" if keys else ""))


def _now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="seconds")


if __name__ == "__main__":
    sys.exit(main())
