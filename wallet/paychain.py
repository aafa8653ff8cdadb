"""What settlement asks of the chain: one narrow seam, and its adapter over Web3.

    Settler --> PayChain (protocol) --+--> Web3PayChain --> web3 --> JSON-RPC node (anvil, a real chain)
                                      +--> a test's chain model  (lagging nodes, reorgs on demand)

Each method is one or two node calls inside wallet.chain.rpc(), so transport
failures and JSON-RPC error replies arrive classified (wallet.errors). "Not
found" is an answer (None / False), never an error: a node that is behind
says it as often as a node that never saw the transaction, which is why the
settler never concludes anything from one "not found" (see settlement.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from web3 import Web3
from web3.exceptions import BlockNotFound, ContractLogicError, TransactionNotFound, Web3RPCError

from wallet.chain import hexstr, rpc, rpc_error, token_contract
from wallet.errors import PaymentRefused, TransactionRejected


@dataclass(frozen=True)
class Receipt:
    """A mined transaction as the node reports it."""

    tx_hash: str
    block_number: int
    block_hash: str
    ok: bool  # status 1; a reverted transfer paid nothing but its gas
    gas_used: int
    gas_wei: int  # gas used x effective gas price


@dataclass(frozen=True)
class UnsignedTransfer:
    """A token transfer ready to sign, and the most gas it can cost (what the node checks the balance against)."""

    tx: dict[str, Any]
    max_gas_wei: int


class PayChain(Protocol):
    """The chain calls settlement makes."""

    def head(self) -> int: ...
    def block_hash(self, number: int) -> str | None: ...
    def token_balance(self, address: str) -> int: ...
    def native_balance(self, address: str) -> int: ...
    def nonce(self, address: str, block: int | str) -> int: ...
    def transfer(self, sender: str, payee: str, units: int, nonce: int, chain_id: int) -> UnsignedTransfer: ...
    def send_raw(self, raw: bytes) -> None: ...
    def receipt(self, tx_hash: str) -> Receipt | None: ...
    def knows(self, tx_hash: str) -> bool: ...
    def sender_tx(self, number: int, sender: str, nonce: int) -> str | None: ...


class Web3PayChain:
    """PayChain over a Web3 client and the credit token's contract."""

    def __init__(self, w3: Web3, token: str):
        self.w3 = w3
        self.token = token_contract(w3, token)

    def head(self) -> int:
        """The node's latest block number."""
        with rpc("block_number"):
            return int(self.w3.eth.block_number)

    def block_hash(self, number: int) -> str | None:
        """The hash of the node's block `number`, or None when it has none (yet)."""
        with rpc("get_block", block=number):
            try:
                block = self.w3.eth.get_block(number)
            except BlockNotFound:
                return None
        return hexstr(block["hash"]) if block and block.get("hash") else None

    def token_balance(self, address: str) -> int:
        """Token units held by `address`."""
        with rpc("balance_of"):
            return int(self.token.functions.balanceOf(address).call())

    def native_balance(self, address: str) -> int:
        """Wei of the chain's native coin held by `address` (it pays the gas)."""
        with rpc("get_balance"):
            return int(self.w3.eth.get_balance(address))

    def nonce(self, address: str, block: int | str) -> int:
        """Transactions sent by `address` as of `block` ("latest", "pending" or a number)."""
        with rpc("get_transaction_count", block=str(block)):
            return int(self.w3.eth.get_transaction_count(address, block))

    def transfer(self, sender: str, payee: str, units: int, nonce: int, chain_id: int) -> UnsignedTransfer:
        """A transfer of `units` to `payee` with gas and fees filled in by the node."""
        with rpc("build_transaction"):
            try:
                tx = self.token.functions.transfer(payee, units).build_transaction(
                    {"from": sender, "nonce": nonce, "chainId": chain_id}
                )
            except ContractLogicError as exc:
                # The node's dry run reverts: sending would burn gas for nothing.
                raise PaymentRefused("would_revert", f"the node's dry run of the transfer reverts ({exc.message})") from None
        fee = int(tx.get("maxFeePerGas") or tx.get("gasPrice") or 0)
        return UnsignedTransfer(tx, int(tx["gas"]) * fee)

    def send_raw(self, raw: bytes) -> None:
        """Broadcast signed bytes; TransactionRejected when the node answers with a JSON-RPC error."""
        with rpc("send_raw_transaction"):
            try:
                self.w3.eth.send_raw_transaction(raw)
            except Web3RPCError as exc:
                code, message = rpc_error(exc)
                raise TransactionRejected(code, message) from None

    def receipt(self, tx_hash: str) -> Receipt | None:
        """The receipt of a mined transaction, or None (not mined, unknown, or a node behind)."""
        with rpc("get_receipt", tx_hash=tx_hash):
            try:
                r = self.w3.eth.get_transaction_receipt(tx_hash)
            except TransactionNotFound:
                return None
        if r is None or r.get("blockHash") is None or r.get("blockNumber") is None:
            return None  # some nodes answer a pending transaction with a receipt that has no block
        used = int(r["gasUsed"])
        return Receipt(
            hexstr(r["transactionHash"]), int(r["blockNumber"]), hexstr(r["blockHash"]), int(r["status"]) == 1,
            used, used * int(r.get("effectiveGasPrice", 0) or 0),
        )

    def knows(self, tx_hash: str) -> bool:
        """True when the node has the transaction (pending or mined)."""
        with rpc("get_transaction", tx_hash=tx_hash):
            try:
                return self.w3.eth.get_transaction(tx_hash) is not None
            except TransactionNotFound:
                return False

    def sender_tx(self, number: int, sender: str, nonce: int) -> str | None:
        """The hash of the transaction from `sender` with `nonce` in block `number`, or None (no such block or transaction)."""
        with rpc("get_block", block=number, full_transactions=True):
            try:
                block = self.w3.eth.get_block(number, full_transactions=True)
            except BlockNotFound:
                return None
        for tx in (block or {}).get("transactions", ()):
            if isinstance(tx, Mapping) and str(tx.get("from", "")).lower() == sender.lower() and int(tx["nonce"]) == nonce:
                return hexstr(tx["hash"])
        return None
