"""The selfpub.toml of the daemon under the crash test: every peer local, secrets in 0600 files."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

MODEL = "standin-model"
PROVIDER = "standin"
# Credits per million tokens; not whole micro-credits per token, so every call's cost is rounded up.
INPUT_PER_MILLION = Decimal("2.5")
OUTPUT_PER_MILLION = Decimal("7.3")
RESERVATION_TTL_SECONDS = 5  # a killed call's hold expires soon after the next start
SETTLE_THRESHOLD = "0.005"  # credits: settlement pays every few calls


@dataclass(frozen=True)
class Peers:
    """Where the daemon finds everything."""

    llm_url: str
    devto_url: str
    pds_url: str
    bsky_handle: str
    rpc_url: str
    chain_id: int
    token: str
    agent: str
    payee: str
    feed_url: str


def crash_config(root: Path, peers: Peers, secret_files: dict[str, Path], keystore: Path) -> Path:
    """Write root/selfpub.toml for the daemon (tests/daemon/run_daemon.py --fast-seconds 1) against the stand-ins."""
    roles = "".join(
        f'[agents.{role}]\nbase_url = "{peers.llm_url}"\nmodel = "{MODEL}"\n'
        f'api_key_file = "{secret_files["llm_api_key"]}"\n'
        "max_retries = 1\ntimeout_seconds = 20\nmax_calls_per_cycle = 40\ntoken_budget_per_cycle = 1000000\n\n"
        for role in ("orchestrator", "research", "writer", "critic")
    )
    text = f"""state_dir = "{root / 'state'}"

[budget]
min_balance = "0.1"
resume_balance = "0.2"
per_cycle_cap = "5"
daily_cap = "500"
reservation_ttl_seconds = {RESERVATION_TTL_SECONDS}

[prices."{MODEL}"]
input_per_million = "{INPUT_PER_MILLION}"
output_per_million = "{OUTPUT_PER_MILLION}"
provider = "{PROVIDER}"

{roles}[research]
items_per_cycle = 1
fetch_timeout_seconds = 10

[review]
max_revisions = 1

[publishers.devto]
enabled = true
base_url = "{peers.devto_url}"
api_key_file = "{secret_files['devto_api_key']}"
publish = true
timeout_seconds = 10

[publishers.bluesky]
enabled = true
base_url = "{peers.pds_url}"
handle = "{peers.bsky_handle}"
app_password_file = "{secret_files['bluesky_app_password']}"
timeout_seconds = 10

[publishers.local]
enabled = true

[wallet]
mode = "evm"
rpc_url = "{peers.rpc_url}"
chain_id = {peers.chain_id}
token_address = "{peers.token}"
address = "{peers.agent}"
keystore_file = "{keystore}"
keystore_password_file = "{secret_files['keystore_password']}"
confirmations = 0
settle_threshold = "{SETTLE_THRESHOLD}"
allowlist = ["{peers.payee}"]
rpc_timeout_seconds = 10

[wallet.providers]
{PROVIDER} = "{peers.payee}"

[http]
port = 0

[logging]
format = "json"
level = "INFO"

[[feeds]]
url = "{peers.feed_url}"
"""
    path = root / "selfpub.toml"
    path.write_text(text)
    return path
