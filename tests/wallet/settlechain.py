"""A chain model behind settlement's PayChain seam: a mempool, mining, reorgs and a node that lags, on demand.

    ChainModel   the truth: canonical blocks (each a list of transfers), the mempool, token and native balances.
                 mine() includes pooled transactions in nonce order; reorg(depth) replaces the top blocks
                 (their transactions back to the pool, or lost); foreign() spends the agent's next nonce
                 elsewhere (the same key used by another wallet program).
    the node     ChainModel answers the PayChain calls as a JSON-RPC node would, from a view `lag` blocks
                 behind the truth; `blind` makes the next receipt/transaction look-ups answer "not found"
                 while the nonce is answered from the up-to-date view (a load balancer mixing a node a
                 block behind with one that is not). `fault` makes one call crash the process (Crash, a
                 BaseException) or time out (RpcUnavailable), before or after the node acted.
    FakeSigner   signs by serialising the transaction: the hash is the digest of the bytes, like a real one.

The oracle: `paid(payee, depth)` = units transferred to the payee in canonical blocks at depth >= `depth`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from itertools import count

from wallet.errors import RpcErrorReply, RpcUnavailable, TransactionRejected
from wallet.paychain import Receipt, UnsignedTransfer

AGENT = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
PAYEE = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
STRANGER = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
GAS = 50_000
FEE = 10  # wei per gas
MAX_GAS_WEI = GAS * FEE


class Crash(BaseException):
    """The process dies here (nothing may catch it on the way out)."""


def digest(*parts: object) -> str:
    return "0x" + hashlib.sha256(repr(parts).encode()).hexdigest()


@dataclass(frozen=True)
class Tx:
    hash: str
    sender: str
    nonce: int
    to: str
    units: int


@dataclass(frozen=True)
class Block:
    number: int
    hash: str
    txs: tuple[Tx, ...]


class Signed:
    def __init__(self, raw: bytes):
        self.raw_transaction = raw
        self.hash = bytes.fromhex(hashlib.sha256(raw).hexdigest())


class FakeSigner:
    """Signs for the agent by serialising the transaction."""

    address = AGENT

    def __init__(self) -> None:
        self.crash_next = False

    def sign_transaction(self, tx: dict) -> Signed:
        if self.crash_next:
            self.crash_next = False
            raise Crash("while signing")
        return Signed(json.dumps(tx, sort_keys=True).encode())


def decode(raw: bytes) -> Tx:
    tx = json.loads(raw)
    return Tx("0x" + hashlib.sha256(raw).hexdigest(), tx["from"], tx["nonce"], tx["to"], tx["units"])


@dataclass
class ChainModel:
    """The truth, and a node answering from it."""

    token_supply: int  # the agent's token units at genesis
    native: int = 10**18
    blocks: list[Block] = field(default_factory=list)
    pool: dict[str, Tx] = field(default_factory=dict)
    automine: bool = False  # a block right after each accepted transaction, as anvil does
    lag: int = 0
    blind: int = 0
    fault: tuple[str, str] | None = None  # (call, crash_before|crash_after|timeout_after)
    _salt: count = field(default_factory=count)

    def __post_init__(self) -> None:
        if not self.blocks:
            self.blocks.append(Block(0, digest("genesis", next(self._salt)), ()))

    # -- the truth ---------------------------------------------------------------

    @property
    def true_head(self) -> int:
        return len(self.blocks) - 1

    def _nonce_in(self, blocks: list[Block], sender: str) -> int:
        return sum(1 for b in blocks for t in b.txs if t.sender == sender)

    def mine(self, n: int = 1, *, include: bool = True) -> None:
        """Mine n blocks, each taking the pooled transactions whose turn it is (nonce order)."""
        for _ in range(n):
            txs: list[Tx] = []
            if include:
                nonces: dict[str, int] = {}
                for tx in sorted(self.pool.values(), key=lambda t: (t.sender, t.nonce)):
                    nxt = nonces.setdefault(tx.sender, self._nonce_in(self.blocks, tx.sender))
                    if tx.nonce == nxt:
                        txs.append(tx)
                        nonces[tx.sender] = nxt + 1
            for tx in txs:
                del self.pool[tx.hash]
            self.blocks.append(Block(len(self.blocks), digest(self.blocks[-1].hash, [t.hash for t in txs], next(self._salt)), tuple(txs)))
            self._drop_stale()

    def _drop_stale(self) -> None:
        for h, tx in list(self.pool.items()):
            if tx.nonce < self._nonce_in(self.blocks, tx.sender):
                del self.pool[h]  # its nonce went to another transaction: it can never be mined

    def reorg(self, depth: int, *, requeue: bool, include: bool) -> None:
        """Replace the top `depth` blocks by depth + 1 new ones; their transactions go back to the pool or are lost."""
        depth = min(depth, self.true_head)
        gone = self.blocks[len(self.blocks) - depth:]
        del self.blocks[len(self.blocks) - depth:]
        if requeue:
            for b in gone:
                for tx in b.txs:
                    self.pool.setdefault(tx.hash, tx)
        self.mine(depth + 1, include=include)

    def foreign(self) -> None:
        """Another program with the agent's key spends its next nonce (on chain or pooled) elsewhere."""
        used = self._nonce_in(self.blocks, AGENT)
        taken = {t.nonce for t in self.pool.values() if t.sender == AGENT}
        nonce = used
        while nonce in taken:
            nonce += 1
        tx = Tx(digest("foreign", nonce, next(self._salt)), AGENT, nonce, STRANGER, 0)
        self.pool[tx.hash] = tx

    def paid(self, payee: str, depth: int = 0) -> int:
        """Units transferred to `payee` in canonical blocks at least `depth` deep."""
        top = self.true_head - depth
        return sum(t.units for b in self.blocks[: top + 1] for t in b.txs if t.to == payee)

    def paid_txs(self, payee: str, depth: int = 0) -> dict[str, int]:
        """Hash -> units of canonical transfers to `payee` at least `depth` deep."""
        top = self.true_head - depth
        return {t.hash: t.units for b in self.blocks[: top + 1] for t in b.txs if t.to == payee}

    # -- the node (PayChain) ------------------------------------------------------

    def _view(self) -> list[Block]:
        return self.blocks[: max(len(self.blocks) - self.lag, 1)]

    def _fault(self, call: str, when: str) -> None:
        if self.fault is not None and self.fault[0] == call:
            kind = self.fault[1]
            if (when == "before" and kind == "crash_before") or (when == "after" and kind in ("crash_after", "timeout_after")):
                self.fault = None
                if kind == "timeout_after":
                    raise RpcUnavailable(call, "ReadTimeout")
                raise Crash(f"{kind} {call}")

    def head(self) -> int:
        self._fault("head", "before")
        return len(self._view()) - 1

    def block_hash(self, number: int) -> str | None:
        view = self._view()
        return view[number].hash if 0 <= number < len(view) else None

    def token_balance(self, address: str) -> int:
        spent = sum(t.units for b in self._view() for t in b.txs if t.sender == address)
        return self.token_supply - spent if address == AGENT else 0

    def native_balance(self, address: str) -> int:
        return self.native

    def nonce(self, address: str, block: int | str) -> int:
        view = self._view()
        if block == "pending":
            n = self._nonce_in(view, address)
            pooled = {t.nonce for t in self.pool.values() if t.sender == address}
            while n in pooled:
                n += 1
            return n
        if block == "latest":
            return self._nonce_in(view, address)
        if block >= len(view):
            raise RpcErrorReply("get_transaction_count", -32000, "header not found")
        return self._nonce_in(view[: block + 1], address)

    def transfer(self, sender: str, payee: str, units: int, nonce: int, chain_id: int) -> UnsignedTransfer:
        self._fault("transfer", "before")
        tx = {"from": sender, "to": payee, "units": units, "nonce": nonce, "chainId": chain_id, "gas": GAS, "maxFeePerGas": FEE}
        return UnsignedTransfer(tx, MAX_GAS_WEI)

    def send_raw(self, raw: bytes) -> None:
        self._fault("send", "before")
        tx = decode(raw)
        view = self._view()
        if tx.hash in self.pool or any(t.hash == tx.hash for b in view for t in b.txs):
            raise TransactionRejected(-32000, "already known")
        if tx.nonce < self._nonce_in(view, tx.sender):
            raise TransactionRejected(-32000, "nonce too low")
        if any(t.sender == tx.sender and t.nonce == tx.nonce for t in self.pool.values()):
            raise TransactionRejected(-32000, "replacement transaction underpriced")
        if self.native < MAX_GAS_WEI:
            raise TransactionRejected(-32000, "insufficient funds for gas * price + value")
        self.pool[tx.hash] = tx
        if self.automine:
            self.mine()
        self._fault("send", "after")

    def _blinded(self) -> bool:
        if self.blind > 0:
            self.blind -= 1
            return True
        return False

    def receipt(self, tx_hash: str) -> Receipt | None:
        self._fault("receipt", "before")
        if self._blinded():
            return None
        for b in self._view():
            for t in b.txs:
                if t.hash == tx_hash:
                    return Receipt(tx_hash, b.number, b.hash, True, GAS // 2, GAS // 2 * FEE)
        return None

    def knows(self, tx_hash: str) -> bool:
        if self._blinded():
            return False
        return tx_hash in self.pool or any(t.hash == tx_hash for b in self._view() for t in b.txs)

    def sender_tx(self, number: int, sender: str, nonce: int) -> str | None:
        view = self._view()
        if not 0 <= number < len(view):
            return None
        return next((t.hash for t in view[number].txs if t.sender == sender and t.nonce == nonce), None)
