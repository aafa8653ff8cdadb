"""A chain model for the tips scanner: forks that come back, a node that lags or refuses log ranges.

    Chain      every block ever made (hash -> Block) and the canonical chain as a tuple of hashes;
               `history` keeps every canonical chain there has been, so an old fork can win again
               with its very block hashes (A -> B -> A). Block hashes are derived from the parent,
               the transactions and a fork salt, like a real chain: same block, same hash.
    FakeNode   the w3 surface TipScanner uses (w3.eth.block_number / get_block / get_logs). It answers
               from the canonical chain, or while lagging from an older one (an earlier head, perhaps on
               a fork since replaced). It fails as web3 does: BlockNotFound for a block it lacks,
               Web3RPCError (with rpc_response) for a range past its head, too wide, or with too many logs.
               `at_call(n, event)` changes the world just before its n-th answer (a reorg mid-scan).

The oracle is `Chain.expected(agent, confirmations)`: the transfers to the agent in canonical blocks at
depth >= confirmations, each once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import count

from hexbytes import HexBytes
from web3.exceptions import BlockNotFound, Web3RPCError

from wallet.chain import TRANSFER_TOPIC, ZERO_ADDRESS, address_topic

TOKEN = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
AGENT = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
FUNDER = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
STRANGER = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"


@dataclass(frozen=True)
class Transfer:
    """One token Transfer (one transaction, one log)."""

    tx_hash: str
    sender: str
    to: str
    units: int


@dataclass(frozen=True)
class Block:
    number: int
    hash: str
    parent: str
    transfers: tuple[Transfer, ...]


def _digest(*parts: object) -> str:
    return "0x" + hashlib.sha256(repr(parts).encode()).hexdigest()


@dataclass
class Chain:
    """All blocks ever made, the canonical chain, and every canonical chain there has been."""

    blocks: dict[str, Block] = field(default_factory=dict)
    canonical: tuple[str, ...] = ()
    history: list[tuple[str, ...]] = field(default_factory=list)
    _salt: count = field(default_factory=count)
    _tx: count = field(default_factory=count)

    def __post_init__(self) -> None:
        if not self.canonical:
            self._set((self._make(0, "0x" + "00" * 32, ()),))

    def _make(self, number: int, parent: str, transfers: tuple[Transfer, ...]) -> str:
        block = Block(number, _digest(parent, number, [t.tx_hash for t in transfers], next(self._salt)), parent, transfers)
        self.blocks[block.hash] = block
        return block.hash

    def _set(self, canonical: tuple[str, ...]) -> None:
        self.canonical = canonical
        if canonical not in self.history:
            self.history.append(canonical)

    @property
    def head(self) -> int:
        return len(self.canonical) - 1

    def transfer(self, sender: str, to: str, units: int) -> Transfer:
        """A new transaction (not yet in a block)."""
        return Transfer(_digest("tx", next(self._tx)), sender, to, units)

    def mine(self, transfers: tuple[Transfer, ...] = ()) -> Block:
        """Append one block on the canonical head."""
        h = self._make(len(self.canonical), self.canonical[-1], transfers)
        self._set((*self.canonical, h))
        return self.blocks[h]

    def reorg(self, depth: int, blocks: list[tuple[Transfer, ...]]) -> list[Transfer]:
        """Replace the top `depth` blocks with new ones holding `blocks`; returns the transfers dropped."""
        depth = min(depth, self.head)  # the genesis stays
        kept = self.canonical[: len(self.canonical) - depth]
        dropped = [t for h in self.canonical[len(kept):] for t in self.blocks[h].transfers]
        chain = list(kept)
        for transfers in blocks:
            chain.append(self._make(len(chain), chain[-1], transfers))
        self._set(tuple(chain))
        return dropped

    def top_transfers(self, depth: int) -> list[Transfer]:
        """The transfers in the top `depth` blocks (what a reorg of that depth drops)."""
        return [t for h in self.canonical[max(len(self.canonical) - depth, 1):] for t in self.blocks[h].transfers]

    def restore(self, index: int) -> None:
        """Make an earlier canonical chain canonical again, with its very blocks (A -> B -> A)."""
        self._set(self.history[index % len(self.history)])

    def expected(self, agent: str, confirmations: int, view: tuple[str, ...] | None = None) -> list[tuple[Transfer, int, str]]:
        """(transfer, log index, block hash) of every transfer to `agent` at depth >= confirmations."""
        view = self.canonical if view is None else view
        out = []
        for h in view[: max(len(view) - confirmations, 0)]:
            for index, t in enumerate(self.blocks[h].transfers):
                if t.to == agent:
                    out.append((t, index, h))
        return out


def rpc_error(code: int, message: str) -> Web3RPCError:
    """What web3 raises for a JSON-RPC error reply."""
    response = {"jsonrpc": "2.0", "id": 1, "error": {"code": code, "message": message}}
    return Web3RPCError(repr(response["error"]), rpc_response=response)


class FakeNode:
    """The node: answers from the canonical chain, or from `lag` (an older canonical chain) while behind."""

    def __init__(self, chain: Chain, token: str = TOKEN):
        self.chain = chain
        self.token = token
        self.lag: tuple[str, ...] | None = None
        self.mixed = False  # a load balancer: the head from an up-to-date backend, blocks and logs from the lagging one
        self.max_results: int | None = None  # "query returned more than N results" (over more than one block)
        self.max_range: int | None = None  # "block range too large"
        self.calls: list[str] = []
        self._events: dict[int, Callable[[], None]] = {}

    def view(self) -> tuple[str, ...]:
        return self.lag if self.lag is not None else self.chain.canonical

    def at_call(self, n: int, event: Callable[[], None]) -> None:
        """Run `event` just before the n-th answer from now (0 = the next one)."""
        self._events[len(self.calls) + n] = event

    def forget_events(self) -> None:
        """Drop the events that have not struck yet."""
        self._events.clear()

    def _answer(self, method: str) -> tuple[str, ...]:
        event = self._events.pop(len(self.calls), None)
        if event is not None:
            event()
        self.calls.append(method)
        return self.view()

    @property
    def block_number(self) -> int:
        view = self._answer("eth_blockNumber")
        return len(self.chain.canonical if self.mixed else view) - 1

    def get_block(self, number: int) -> dict:
        view = self._answer("eth_getBlockByNumber")
        if not 0 <= number < len(view):
            raise BlockNotFound(f"Block with id: '{number}' not found.")
        block = self.chain.blocks[view[number]]
        return {"number": number, "hash": HexBytes(block.hash), "parentHash": HexBytes(block.parent)}

    def get_logs(self, query: dict) -> list[dict]:
        view = self._answer("eth_getLogs")
        start, end = int(query["fromBlock"]), int(query["toBlock"])
        if end >= len(view):
            raise rpc_error(-32602, "block range extends beyond current head block")
        if self.max_range is not None and end - start + 1 > self.max_range:
            raise rpc_error(-32600, f"eth_getLogs block range too large, max {self.max_range} blocks")
        wanted = query["topics"][2].lower()
        logs = []
        for number in range(start, end + 1):
            block = self.chain.blocks[view[number]]
            for index, t in enumerate(block.transfers):
                if query["address"] == self.token and address_topic(t.to) == wanted:
                    logs.append({
                        "address": self.token, "blockNumber": number, "blockHash": HexBytes(block.hash),
                        "transactionHash": HexBytes(t.tx_hash), "logIndex": index,
                        "topics": [HexBytes(TRANSFER_TOPIC), HexBytes(address_topic(t.sender)), HexBytes(address_topic(t.to))],
                        "data": HexBytes(t.units.to_bytes(32, "big")),
                    })
        if self.max_results is not None and len(logs) > self.max_results and end > start:
            raise rpc_error(-32005, f"query returned more than {self.max_results} results")
        return logs


class FakeW3:
    """The Web3 seam TipScanner is given: only `.eth`."""

    def __init__(self, node: FakeNode):
        self.eth = node


def funding(chain: Chain, units: int) -> Transfer:
    """A mint to the agent."""
    return chain.transfer(ZERO_ADDRESS, AGENT, units)
