"""Scan speed: blocks/s and logs/s booking 1,000 transfers spread over 10,000 blocks on anvil.

    .venv/bin/python bench/bench_wallet_scan.py [--blocks 10000] [--transfers 1000] [--range 2000]

Starts anvil (npm @foundry-rs/anvil, installed into build/node/chain if
missing) on 127.0.0.1, deploys the credit token, sends the transfers, mines
the rest of the blocks, then times one full scan into a SQLite ledger.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from web3 import Web3  # noqa: E402

from kernel.db import make_engine  # noqa: E402
from config.settings import WalletSettings  # noqa: E402
from ledger.journal import WALLET, Journal  # noqa: E402
from tests.peers.anvil import rpc_call, start_anvil, stop_anvil  # noqa: E402
from wallet import ChainWallet, migrate  # noqa: E402
from wallet.chain import token_artifact, token_contract  # noqa: E402


def main() -> None:
    """Run the benchmark and print the figures."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--blocks", type=int, default=10_000)
    ap.add_argument("--transfers", type=int, default=1_000)
    ap.add_argument("--range", type=int, default=2_000, dest="block_range")
    args = ap.parse_args()
    node = start_anvil()
    try:
        w3 = Web3(Web3.HTTPProvider(node.url, request_kwargs={"timeout": 30}))
        funder, agent = node.accounts[0], node.accounts[1]
        art = token_artifact()
        tx = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"]).constructor("credit", "CR", 18).transact({"from": funder})
        token = token_contract(w3, w3.eth.wait_for_transaction_receipt(tx)["contractAddress"])
        w3.eth.wait_for_transaction_receipt(token.functions.mint(funder, 10**30).transact({"from": funder}))
        start_block = int(w3.eth.block_number) + 1
        gap = max(args.blocks // max(args.transfers, 1) - 1, 0)
        t0 = time.perf_counter()
        last = None
        for i in range(args.transfers):
            data = token.encode_abi("transfer", [agent, 10**15 * (i + 1)])
            last = rpc_call(node.url, "eth_sendTransaction", [{"from": funder, "to": token.address, "data": data, "gas": hex(60_000)}])
            if gap:
                rpc_call(node.url, "anvil_mine", [hex(gap)])
        if last is not None:
            w3.eth.wait_for_transaction_receipt(last)
        rest = start_block + args.blocks - 1 - int(w3.eth.block_number)
        if rest > 0:
            rpc_call(node.url, "anvil_mine", [hex(rest)])
        setup = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as tmp:
            engine = make_engine(f"sqlite:///{tmp}/bench.db")
            journal = Journal(engine)
            journal.migrate()
            migrate(engine)
            settings = WalletSettings(mode="evm", confirmations=0, scan_block_range=args.block_range)
            wallet = ChainWallet(w3, journal, settings, token=token.address, address=agent, start_block=start_block)
            wallet.connect()
            t1 = time.perf_counter()
            result = wallet.scan()
            elapsed = time.perf_counter() - t1
            blocks = result.to_block - result.from_block + 1
            print(f"setup: {args.transfers} transfers over {blocks} blocks in {setup:.1f}s")
            print(
                f"scan: {blocks} blocks, {result.logs} logs ({result.counted} booked, "
                f"{journal.balance(WALLET)} ucr) in {elapsed:.2f}s, range {args.block_range}"
            )
            print(f"scan speed: {blocks / elapsed:,.0f} blocks/s, {result.logs / elapsed:,.0f} logs/s")
            engine.dispose()
    finally:
        stop_anvil(node)


if __name__ == "__main__":
    main()
