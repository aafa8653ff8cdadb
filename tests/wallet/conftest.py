"""Wallet fixtures: a journal per database, the embedded chain, anvil (session) with a fresh token per test."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account
from sqlalchemy import Engine
from web3 import Web3

from kernel.db import make_engine
from config.settings import WalletSettings
from ledger.journal import Journal
from tests.peers.anvil import Anvil, rpc_call, start_anvil, stop_anvil
from wallet import ChainWallet, migrate
from wallet.chain import token_artifact, token_contract
from wallet.embedded import EmbeddedChain
from wallet.keystore import signer_from_key
from wallet.units import ucr_to_units


def make_journal(engine: Engine) -> Journal:
    journal = Journal(engine)
    journal.migrate()
    migrate(engine)
    return journal


@pytest.fixture
def journal(engine: Engine) -> Journal:
    """A migrated ledger + wallet schema on SQLite and on PostgreSQL."""
    return make_journal(engine)


@pytest.fixture
def sqlite_journal(sqlite_url: str) -> Iterator[Journal]:
    """A migrated ledger + wallet schema on SQLite only (fast tests)."""
    eng = make_engine(sqlite_url)
    yield make_journal(eng)
    eng.dispose()


@pytest.fixture
def chain() -> EmbeddedChain:
    """A fresh in-process chain with the credit token (18 decimals)."""
    return EmbeddedChain.start()


def wallet_settings(**overrides) -> WalletSettings:  # noqa: ANN003
    base = {"mode": "embedded", "confirmations": 0, "scan_block_range": 100, "settle_threshold": "1"}
    return WalletSettings(**{**base, **overrides})


def embedded_wallet(chain: EmbeddedChain, journal: Journal, **overrides) -> ChainWallet:  # noqa: ANN003
    payee = chain.others[0]
    settings = wallet_settings(**{"allowlist": (payee,), "providers": {"embedded": payee}, **overrides})
    return ChainWallet(
        chain.w3, journal, settings, token=chain.token_address, address=chain.agent, signer=chain.agent_signer,
        mode="embedded",
    )


# -- anvil -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def anvil() -> Iterator[Anvil]:
    """One anvil for the session, on a free loopback port, stopped by PID."""
    node = start_anvil()
    yield node
    stop_anvil(node)


@dataclass
class AnvilToken:
    """A freshly deployed credit token on the session's anvil."""

    node: Anvil
    w3: Web3
    address: str
    decimals: int
    funder: str
    agent: str
    agent_key: str
    payee: str
    start_block: int

    def units(self, ucr: int) -> int:
        return ucr_to_units(ucr, self.decimals).units

    def tip(self, ucr: int) -> str:
        tx = token_contract(self.w3, self.address).functions.transfer(self.agent, self.units(ucr)).transact({"from": self.funder})
        self.w3.eth.wait_for_transaction_receipt(tx)
        return tx.to_0x_hex()

    def mint(self, to: str, ucr: int) -> None:
        tx = token_contract(self.w3, self.address).functions.mint(to, self.units(ucr)).transact({"from": self.funder})
        self.w3.eth.wait_for_transaction_receipt(tx)

    def mine(self, blocks: int = 1) -> None:
        rpc_call(self.node.url, "anvil_mine", [hex(blocks)])

    def balance_of(self, address: str) -> int:
        return int(token_contract(self.w3, self.address).functions.balanceOf(address).call())

    def wallet(self, journal: Journal, w3: Web3 | None = None, **overrides) -> ChainWallet:  # noqa: ANN003
        settings = wallet_settings(
            **{"mode": "evm", "rpc_url": self.node.url, "chain_id": self.node.chain_id, "token_address": self.address,
               "address": self.agent, "allowlist": (self.payee,), "providers": {"cloud": self.payee}, **overrides}
        )
        return ChainWallet(
            w3 or self.w3, journal, settings, token=self.address, address=self.agent,
            signer=signer_from_key(self.agent_key), start_block=self.start_block,
        )

    def config(self, root: Path, db_url: str, *, password: str = "settle-test") -> Path:
        """A selfpub.toml for this token on `db_url`, with the agent's key in a keystore (for CLI and worker processes)."""
        keystore, secret = root / "agent.keystore", root / "keystore-password"
        keystore.write_text(json.dumps(Account.encrypt(self.agent_key, password, kdf="pbkdf2", iterations=1000)))
        secret.write_text(password)
        for f in (keystore, secret):
            f.chmod(0o600)
        path = root / "selfpub.toml"
        path.write_text(
            f'state_dir = "{root / "state"}"\n[database]\nurl = "{db_url}"\n[wallet]\nmode = "evm"\n'
            f'rpc_url = "{self.node.url}"\nchain_id = {self.node.chain_id}\ntoken_address = "{self.address}"\n'
            f'address = "{self.agent}"\nkeystore_file = "{keystore}"\nkeystore_password_file = "{secret}"\n'
            f'confirmations = 0\nsettle_threshold = "1"\nallowlist = ["{self.payee}"]\n'
            f'[wallet.providers]\ncloud = "{self.payee}"\n'
        )
        return path


@pytest.fixture
def anvil_token(anvil: Anvil) -> AnvilToken:
    """A new token per test (isolated balances) with the funder holding a supply."""
    w3 = Web3(Web3.HTTPProvider(anvil.url, request_kwargs={"timeout": 10}))
    art = token_artifact()
    funder = anvil.accounts[0]
    tx = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"]).constructor("credit", "CR", 18).transact({"from": funder})
    address = w3.eth.wait_for_transaction_receipt(tx)["contractAddress"]
    tok = AnvilToken(anvil, w3, address, 18, funder, anvil.accounts[1], anvil.keys[1], anvil.accounts[2], int(w3.eth.block_number))
    tok.mint(funder, 1_000_000_000_000)
    return tok
