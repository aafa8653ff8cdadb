"""The demo's paid inference: the embedded model behind the x402 SDK's payment middleware, paid per call.

    paid = PaidInference(chain, state_dir)
    paid.settings()          [x402.spend] (payee, network, token, daily cap pinned; exact only) and the wallet's
                             keystore (the agent's dev key, written 0600 with its password file) for demo_settings
    paid.front(base_url)     the embedded server's base_url -> the paid endpoint's ("http://127.0.0.1:<port>/v1"):
                             payments/paidllm.py on 127.0.0.1, its payee the provider account, its facilitator the
                             SDK's on the embedded chain (facilitator_on, as reader.py), PAID_CALL a call
    paid.calls(journal)      the x402 payments booked: expenses:compute:<agent> against assets:wallet
    paid.close()             stop the endpoint

The agents' client pays each 402 under the spend policy (daemon/wiring_agents.paying_http_client): exact, at or
under the call's reservation, booked by the meter against the wallet (nothing owed to the provider).
"""

from __future__ import annotations

import json
import os
from contextlib import ExitStack
from pathlib import Path

from eth_account import Account

from ledger import Journal
from ledger.reads import PaidCall, x402_payments_open
from payments.paidllm import forward_to, paid_chat_app, serve_loopback
from payments.x402 import facilitator_on, read_domain, resource_server

# One call's price: under the smallest reservation of any demo call (the orchestrator's 128 output tokens
# alone reserve 0.00768 credits at the demo's prices, plus its prompt), so the policy never refuses one.
PAID_CALL = 7_000  # ucr (0.007 credits)
DAILY_CAP = "5"  # credits
KEYSTORE = "agent.keystore.json"  # in the state dir, mode 0600
KEYSTORE_PASSWORD = "agent.keystore.password"  # noqa: S105 - a file name


class PaidInference:
    """The paid endpoint in front of the embedded model, and the settings that let the agents pay it."""

    def __init__(self, chain, state_dir: Path) -> None:  # noqa: ANN001 - wallet.embedded.EmbeddedChain
        self.chain = chain
        self.state_dir = state_dir
        self.network = f"eip155:{chain.chain_id}"
        self.payee = chain.others[0]  # the demo's compute provider
        self.facilitator = chain.others[1]  # pays the settlements' gas (reader.py uses others[-1])
        self._stack = ExitStack()

    def settings(self) -> dict:
        """[wallet] keystore and [x402.spend] for demo_settings (the keystore holds the agent's dev key)."""
        key, password = self.state_dir / KEYSTORE, self.state_dir / KEYSTORE_PASSWORD
        secret = os.urandom(18).hex()
        _write_private(password, secret)
        _write_private(key, json.dumps(Account.encrypt(self.chain.dev_key(self.chain.agent), secret)))
        return {
            "wallet": {"keystore_file": str(key), "keystore_password": {"file": str(password)}},
            "spend": {"enabled": True, "payees": [self.payee], "network": self.network,
                      "asset": self.chain.token_address, "decimals": self.chain.decimals,
                      "daily_cap": DAILY_CAP, "schemes": ["exact"]},
        }

    def front(self, base_url: str) -> str:
        """Serve the paid endpoint in front of the embedded server at base_url; its base_url."""
        domain = read_domain(self.chain.w3, self.chain.token_address)
        price = {"amount": str(self.chain.units(PAID_CALL)), "asset": self.chain.token_address,
                 "extra": {"name": domain.name, "version": domain.version}}
        server = resource_server(facilitator_on(self.chain.w3, self.chain.dev_key(self.facilitator), self.network),
                                 self.network)
        app = paid_chat_app(forward_to(base_url), server, network=self.network, pay_to=self.payee, price=price)
        return self._stack.enter_context(serve_loopback(app)) + "/v1"

    def calls(self, journal: Journal) -> list[PaidCall]:
        """Every inference payment booked and not voided."""
        return x402_payments_open(journal)

    def close(self) -> None:
        """Stop the paid endpoint."""
        self._stack.close()


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(path, 0o600)
