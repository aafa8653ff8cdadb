"""`selfpub publish FILE.md`: through the outbox, once per file, printing where it went."""

from __future__ import annotations

import stat

from typer.testing import CliRunner

from daemon.cli import app

runner = CliRunner()

ARTICLE = """---
title: Notes on a hand-written post
tags: [python, atproto]
description: What I learned.
bsky_text: "A hand-written post 🚀 #python"
---
# Hello

Body text.
"""


def _config(tmp_path, extra: str = "") -> str:
    cfg = tmp_path / "selfpub.toml"
    cfg.write_text(f'state_dir = "{tmp_path / "state"}"\n{extra}')
    return str(cfg)


def test_publish_twice_writes_one_local_file(tmp_path):
    post = tmp_path / "post.md"
    post.write_text(ARTICLE)
    cfg = _config(tmp_path)
    first = runner.invoke(app, ["--config", cfg, "publish", str(post), "--to", "local"])
    assert first.exit_code == 0, first.output
    second = runner.invoke(app, ["--config", cfg, "publish", str(post)])
    assert second.exit_code == 0, second.output
    files = list((tmp_path / "state" / "outbox").glob("*.md"))
    assert len(files) == 1
    assert "local" in first.output and files[0].name in first.output.replace("\n", "")
    assert first.output == second.output


def test_unconfigured_platform_is_refused_with_the_key_to_set(tmp_path):
    post = tmp_path / "post.md"
    post.write_text(ARTICLE)
    result = runner.invoke(app, ["--config", _config(tmp_path), "publish", str(post), "--to", "devto"])
    assert result.exit_code == 2
    assert "publishers.devto.api_key" in result.output


def test_publish_to_a_local_pds_prints_the_record_uri_and_posts_once(tmp_path, pds):
    account = pds.create_account("cli-writer.test", "cli-writer-password")
    post = tmp_path / "post.md"
    post.write_text(ARTICLE)
    cfg = _config(
        tmp_path,
        f'[publishers.bluesky]\nenabled = true\nbase_url = "{pds.url}"\nhandle = "{account.handle}"\n'
        'app_password_env = "TEST_BSKY_PASSWORD"\n[publishers.local]\nenabled = false\n',
    )
    env = {"TEST_BSKY_PASSWORD": account.password}
    first = runner.invoke(app, ["--config", cfg, "publish", str(post)], env=env)
    assert first.exit_code == 0, first.output
    assert f"at://{account.did}/app.bsky.feed.post/" in first.output
    second = runner.invoke(app, ["--config", cfg, "publish", str(post), "--to", "bluesky"], env=env)
    assert second.exit_code == 0, second.output
    assert stat.S_IMODE((tmp_path / "state" / "bluesky.session").stat().st_mode) == 0o600
    from atproto import Client

    reader = Client(base_url=pds.url)
    reader.login(account.handle, account.password, fetch_bsky_profile=False)
    records = reader.com.atproto.repo.list_records({"repo": account.did, "collection": "app.bsky.feed.post"}).records
    assert len(records) == 1
    assert records[0].value.text.startswith("A hand-written post 🚀 #python")
    assert account.password not in first.output
