"""Start and stop anvil (from npm @foundry-rs/anvil) on 127.0.0.1: the real JSON-RPC node for tests.

    node = start_anvil()          # installs build/node/chain first if missing
    ...  node.url, node.accounts, node.keys
    stop_anvil(node)              # by PID

Reusable by wallet, daemon and e2e tests.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PEER = REPO / "tests" / "peers" / "chain"
TARGET = REPO / "build" / "node" / "chain"
MNEMONIC = "test test test test test test test test test test test junk"  # anvil's well-known dev mnemonic
CHAIN_ID = 31337


@dataclass
class Anvil:
    """A running anvil: its URL, PID, chain id and dev accounts (address, private key)."""

    url: str
    port: int
    pid: int
    chain_id: int
    accounts: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    process: subprocess.Popen | None = field(default=None, repr=False)


def install_chain_peer() -> Path:
    """npm-install tests/peers/chain into build/node/chain when it is missing; the node_modules path."""
    modules = TARGET / "node_modules"
    if not (modules / "@foundry-rs").is_dir() or not (modules / "solc").is_dir():
        TARGET.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            if (PEER / name).exists():
                (TARGET / name).write_bytes((PEER / name).read_bytes())
        script = PEER / "install.sh"
        if script.exists() and os.access(script, os.X_OK):
            subprocess.run([str(script), str(TARGET)], check=True)
        else:
            subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=TARGET, check=True)
    return modules


def anvil_binary() -> Path:
    """The anvil binary shipped by the platform package @foundry-rs/anvil-<os>-<arch>."""
    modules = install_chain_peer()
    found = sorted(modules.glob("@foundry-rs/anvil-*/bin/anvil"))
    if not found:
        raise RuntimeError(f"no anvil binary under {modules}/@foundry-rs; reinstall tests/peers/chain")
    binary = found[0]
    binary.chmod(binary.stat().st_mode | 0o111)
    return binary


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rpc_call(url: str, method: str, params: list | None = None, timeout: float = 5.0):  # noqa: ANN201
    """One raw JSON-RPC call (for anvil_* test methods web3 has no wrapper for)."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).encode()
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        reply = json.loads(resp.read())
    if "error" in reply:
        raise RuntimeError(f"{method}: {reply['error']}")
    return reply["result"]


def start_anvil(*, accounts: int = 10, timeout: float = 30.0, extra_args: tuple[str, ...] = ()) -> Anvil:
    """Start anvil on a free loopback port and wait until it answers."""
    port = free_port()
    args = [
        str(anvil_binary()), "--host", "127.0.0.1", "--port", str(port), "--chain-id", str(CHAIN_ID),
        "--accounts", str(accounts), "--mnemonic", MNEMONIC, "--silent", *extra_args,
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"anvil exited with {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
        try:
            rpc_call(url, "eth_chainId", timeout=1.0)
            break
        except OSError:
            if time.monotonic() > deadline:
                os.kill(proc.pid, signal.SIGKILL)
                raise RuntimeError(f"anvil did not answer on {url} within {timeout}s") from None
            time.sleep(0.1)
    from eth_account import Account

    Account.enable_unaudited_hdwallet_features()
    keys = [Account.from_mnemonic(MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}") for i in range(accounts)]
    return Anvil(url, port, proc.pid, CHAIN_ID, [k.address for k in keys], [k.key.to_0x_hex() for k in keys], proc)


def stop_anvil(node: Anvil, timeout: float = 10.0) -> None:
    """Stop anvil by its PID (TERM, then KILL)."""
    try:
        os.kill(node.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if node.process is not None:
        try:
            node.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(node.pid, signal.SIGKILL)
            node.process.wait()
