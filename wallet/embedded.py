"""An in-process EVM (eth-tester + py-evm) with the credit token deployed: for the demo and tests.

The chain lives in memory and is gone when the process ends. Account 0 is the
funder (it owns the token and holds a supply to tip from); account 1 is the
agent. The token is CreditToken3009 (the ERC-20 with EIP-3009), so x402 paid
reads settle on it too; `dev_key(address)` gives an eth-tester account's key
to a client or facilitator that must sign itself (a test chain's keys only). The embedded chain is built here, not in daemon/, because it is not a
client to anything outside the process.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from eth_tester import EthereumTester, PyEVMBackend
from web3 import EthereumTesterProvider, Web3

from wallet.chain import token_artifact, token_contract
from wallet.keystore import Signer, signer_from_key
from wallet.units import ucr_to_units

FUNDER_SUPPLY_UCR = 1_000_000 * 1_000_000  # one million credits to tip from


@dataclass
class EmbeddedChain:
    """A running in-memory chain with the credit token deployed."""

    w3: Web3
    token_address: str
    decimals: int
    funder: str
    agent: str
    agent_signer: Signer
    others: tuple[str, ...]  # more funded accounts (payees, tippers)
    _keys: dict[str, bytes] = field(default_factory=dict, repr=False)  # address -> eth-tester's dev key

    @classmethod
    def start(cls, *, decimals: int = 18, funder_supply_ucr: int = FUNDER_SUPPLY_UCR) -> EmbeddedChain:
        """Start a chain, deploy the token and give the funder a supply to tip from."""
        backend = PyEVMBackend()
        w3 = Web3(EthereumTesterProvider(EthereumTester(backend)))
        accounts = w3.eth.accounts
        funder, agent = accounts[0], accounts[1]
        art = token_artifact("CreditToken3009")
        factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
        tx = factory.constructor("selfpub credit", "CR", decimals).transact({"from": funder})
        address = w3.eth.wait_for_transaction_receipt(tx)["contractAddress"]
        keys = {Web3.to_checksum_address(k.public_key.to_checksum_address()): k.to_bytes() for k in backend.account_keys}
        chain = cls(w3, address, decimals, funder, agent, signer_from_key(backend.account_keys[1].to_bytes()),
                    tuple(accounts[2:]), keys)
        chain.mint(funder, funder_supply_ucr)
        return chain

    def dev_key(self, address: str) -> str:
        """The private key of one of the chain's dev accounts (0x hex): for a signer that needs it raw."""
        return "0x" + self._keys[Web3.to_checksum_address(address)].hex()

    @property
    def chain_id(self) -> int:
        """The chain id eth-tester reports."""
        return int(self.w3.eth.chain_id)

    @property
    def token(self):  # noqa: ANN201
        """The token contract."""
        return token_contract(self.w3, self.token_address)

    def units(self, amount_ucr: int) -> int:
        """Token units of a micro-credit amount."""
        return ucr_to_units(amount_ucr, self.decimals).units

    def mint(self, to: str, amount_ucr: int) -> str:
        """Mint new credits to an address (a funding, from the zero address); returns the tx hash."""
        tx = self.token.functions.mint(to, self.units(amount_ucr)).transact({"from": self.funder})
        self.w3.eth.wait_for_transaction_receipt(tx)
        return tx.to_0x_hex()

    def fund_agent(self, amount_ucr: int) -> str:
        """Give the agent its opening credits (a mint: booked as equity:opening)."""
        return self.mint(self.agent, amount_ucr)

    def tip(self, amount_ucr: int, *, sender: str | None = None) -> str:
        """Send the agent a tip from the funder (or another funded account); returns the tx hash."""
        tx = self.token.functions.transfer(self.agent, self.units(amount_ucr)).transact({"from": sender or self.funder})
        self.w3.eth.wait_for_transaction_receipt(tx)
        return tx.to_0x_hex()

    def mine(self, blocks: int = 1) -> int:
        """Mine empty blocks; returns the new head."""
        self.w3.provider.ethereum_tester.mine_blocks(blocks)
        return int(self.w3.eth.block_number)

    def balance_of(self, address: str) -> int:
        """Token units held by an address."""
        return int(self.token.functions.balanceOf(address).call())
