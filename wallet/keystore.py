"""The agent's key: an encrypted keystore file (mode 0600) and a signer that never shows the key.

The private key exists only in memory inside `Signer`; it is never logged,
put in an exception, written to the database or to the process title.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

from eth_account import Account

from wallet.errors import KeystoreError

log = logging.getLogger(__name__)

KEYSTORE_MODE = 0o600


class Signer:
    """Signs transactions for one address; its repr shows the address only."""

    __slots__ = ("address", "_account")

    def __init__(self, account) -> None:  # noqa: ANN001  (an eth_account LocalAccount)
        self.address: str = account.address
        self._account = account

    def sign_transaction(self, tx: dict):  # noqa: ANN201
        """A signed transaction (.raw_transaction, .hash)."""
        return self._account.sign_transaction(tx)

    def __repr__(self) -> str:
        return f"Signer({self.address})"

    __str__ = __repr__

    def __reduce__(self):  # noqa: ANN204
        raise TypeError("a Signer cannot be pickled")


def signer_from_key(key: bytes | str) -> Signer:
    """A signer from a raw key (tests and the embedded chain only)."""
    return Signer(Account.from_key(key))


def create_keystore(path: Path, password: str) -> str:
    """Write a new encrypted keystore at `path` (mode 0600, never overwritten); returns the address."""
    if not password:
        raise KeystoreError("an empty password would leave the keystore unprotected")
    account = Account.create()
    encrypted = Account.encrypt(account.key, password)
    path = Path(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEYSTORE_MODE)
    except FileExistsError:
        raise KeystoreError(f"{path} already exists; choose another file (a keystore is never overwritten)") from None
    except OSError as exc:
        raise KeystoreError(f"cannot create {path}: {exc.strerror}") from None
    try:
        os.fchmod(fd, KEYSTORE_MODE)  # whatever the umask said
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(encrypted, out)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return account.address


def load_signer(path: Path, password: str) -> Signer:
    """Decrypt the keystore at `path`; KeystoreError names the file, never the key or password."""
    return Signer(Account.from_key(load_key(path, password)))


def load_key(path: Path, password: str) -> bytes:
    """The private key in the keystore at `path`, for a signer that needs it raw (the x402 SDK's facilitator).

    KeystoreError names the file, never the key or password; the caller must not log or store what it gets.
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise KeystoreError(f"keystore {path} does not exist; create one with `selfpub wallet new --keystore {path}`") from None
    except (OSError, ValueError) as exc:
        raise KeystoreError(f"keystore {path} cannot be read ({type(exc).__name__})") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("keystore readable by others; run chmod 600", extra={"path": str(path)})
    try:
        key = Account.decrypt(data, password)
    except (ValueError, KeyError, TypeError):
        raise KeystoreError(f"cannot decrypt keystore {path}: wrong password or not a keystore") from None
    return bytes(key)
