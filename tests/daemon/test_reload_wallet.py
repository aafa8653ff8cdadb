"""SIGHUP reaches the wallet: new [wallet] settings take effect without a restart; a bad one keeps the old wallet.

The real wiring (build_service) with the embedded chain, on local stand-ins (FakeOpenAI, the spec-checking
fake Dev.to, the bundled sample feed on 127.0.0.1), on the SQLite ledger.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from config import load_settings
from daemon.demo.loop import sample_site
from daemon.wiring import WalletSlot, build_service
from tests.e2e.support import ForemServer, Secrets, cli_env, cycle_config, fooled_model
from tests.fakes.openai import FakeOpenAI

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


async def test_a_reload_rebuilds_the_wallet_and_a_wallet_that_cannot_be_built_keeps_the_old_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secrets = Secrets.random()
    files = secrets.write(tmp_path / "secrets")
    llm = FakeOpenAI(default=fooled_model("", writer_payload=False), usage=(400, 200))
    forem = ForemServer(secrets.devto_api_key)
    with llm.serve() as llm_url, forem.running(), sample_site() as feed_url:
        def config(wallet: str) -> Path:
            path = cycle_config(tmp_path, feeds=[feed_url], llm_url=llm_url, forem_url=forem.url, secret_files=files,
                                items_per_cycle=1, max_revisions=0)
            path.write_text(path.read_text().replace("[wallet]\n", f"[wallet]\n{wallet}", 1))
            return path

        path = config('mode = "embedded"\nsettle_threshold = "5"\nsettle_daily_cap = "50"\n')
        env = cli_env()
        svc = build_service(load_settings(path, env), config_path=path, environ=env)
        try:
            wallet = svc.jobs.settle.__self__
            assert isinstance(wallet, WalletSlot)
            first = wallet.current
            assert first.mode == "embedded" and first.settings.settle_threshold == 5_000_000
            chain, balance = first.embedded, first.balance()

            # new thresholds: a new wallet on the same embedded chain, used by the next job
            config('mode = "embedded"\nsettle_threshold = "1.5"\nsettle_daily_cap = "7"\n')
            assert await svc.reload() is True
            assert wallet.current is not first
            assert (wallet.current.settings.settle_threshold, wallet.current.settings.settle_daily_cap) == (1_500_000, 7_000_000)
            assert wallet.current.embedded is chain and wallet.current.balance() == balance  # same chain, same money
            assert svc.jobs.settle().dry_run is False  # the job runs on the new wallet

            # the same wallet settings again: nothing rebuilt
            kept = wallet.current
            assert await svc.reload() is True
            assert wallet.current is kept

            # a wallet that cannot be built: the error is logged, the running wallet stays
            # (a config that passes `selfpub config check`, with a keystore file that is not a keystore)
            keystore = tmp_path / "secrets" / "keystore.json"
            keystore.write_text("{}")
            keystore.chmod(0o600)
            config(f'mode = "evm"\nrpc_url = "http://127.0.0.1:9"\nchain_id = 31337\n'
                   f'token_address = "0x{"11" * 20}"\naddress = "0x{"22" * 20}"\nkeystore_file = "{keystore}"\n')
            with caplog.at_level(logging.ERROR):
                assert await svc.reload() is True  # the config itself is valid and applied
            assert wallet.current is kept
            failed = [r for r in caplog.records if r.getMessage() == "wallet rebuild failed; keeping the previous wallet"]
            assert failed and failed[0].error == "KeystoreError", [(r.getMessage(), r.__dict__.get("detail")) for r in caplog.records]
            assert "keystore" in failed[0].detail and secrets.keystore_password not in failed[0].detail
            assert svc.jobs.settle().dry_run is False  # jobs still run on the kept wallet
        finally:
            await svc.jobs.cycle.__self__.current.aclose()
            svc.engine.dispose()
