"""`selfpub publish FILE.md`: through the outbox, once per file, printing where it went."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import frontmatter
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
    assert second.stdout == first.stdout
    assert "already published" not in first.output and "already published: local" in second.output
    assert "--update" not in second.output  # not edited: nothing to offer


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


def _edit(path: Path, text: str) -> None:
    path.write_text(text)
    later = time.time() + 2  # a coarse file system clock still sees the edit as after the publish
    os.utime(path, (later, later))


def test_a_first_heading_line_is_the_title(tmp_path):
    post = tmp_path / "post.md"
    post.write_text("\n# A title from the heading\n\nThe body, without the heading.\n")
    result = runner.invoke(app, ["--config", _config(tmp_path), "publish", str(post), "--to", "local"])
    assert result.exit_code == 0, result.output
    (written,) = (tmp_path / "state" / "outbox").glob("*.md")
    doc = frontmatter.load(written)
    assert doc["title"] == "A title from the heading"
    assert doc.content.strip() == "The body, without the heading."
    untitled = tmp_path / "untitled.md"
    untitled.write_text("Just text.\n## Not a title\n")
    refused = runner.invoke(app, ["--config", _config(tmp_path), "publish", str(untitled), "--to", "local"])
    assert refused.exit_code == 2 and "# Title" in refused.output


def test_an_edited_file_is_already_published_until_update(tmp_path):
    post = tmp_path / "post.md"
    post.write_text(ARTICLE)
    cfg = _config(tmp_path)
    assert runner.invoke(app, ["--config", cfg, "publish", str(post)]).exit_code == 0
    (written,) = (tmp_path / "state" / "outbox").glob("*.md")
    _edit(post, ARTICLE.replace("Body text.", "Corrected body text."))
    stale = runner.invoke(app, ["--config", cfg, "publish", str(post)])
    assert stale.exit_code == 1
    assert "already published: local" in stale.output and "--update" in stale.output
    assert "Corrected" not in written.read_text()  # nothing changed behind the user's back
    updated = runner.invoke(app, ["--config", cfg, "publish", str(post), "--update"])
    assert updated.exit_code == 0, updated.output
    assert "Corrected body text." in written.read_text()
    assert list((tmp_path / "state" / "outbox").glob("*.md")) == [written]


def test_update_puts_the_devto_article_and_leaves_bluesky_alone(tmp_path, pds):
    from tests.e2e.support import ForemServer

    account = pds.create_account("cli-editor.test", "cli-editor-password")
    forem = ForemServer("devto-key")
    post = tmp_path / "post.md"
    post.write_text(ARTICLE)
    cfg = _config(
        tmp_path,
        f'[publishers.devto]\nenabled = true\nbase_url = "{forem.url}"\napi_key_env = "TEST_DEVTO_KEY"\npublish = true\n'
        f'[publishers.bluesky]\nenabled = true\nbase_url = "{pds.url}"\nhandle = "{account.handle}"\n'
        'app_password_env = "TEST_BSKY_PASSWORD"\n[publishers.local]\nenabled = false\n',
    )
    env = {"TEST_BSKY_PASSWORD": account.password, "TEST_DEVTO_KEY": "devto-key"}
    with forem.running():
        first = runner.invoke(app, ["--config", cfg, "publish", str(post)], env=env)
        assert first.exit_code == 0, first.output
        _edit(post, ARTICLE.replace("title: Notes on a hand-written post", "title: Notes, corrected"))
        stale = runner.invoke(app, ["--config", cfg, "publish", str(post)], env=env)
        assert stale.exit_code == 1 and "already published: devto (https://dev.to/someone/article-1)" in stale.output
        updated = runner.invoke(app, ["--config", cfg, "publish", str(post), "--update"], env=env)
    assert updated.exit_code == 0, updated.output
    assert not forem.errors  # every request matched the Forem spec, the PUT included
    (article,) = forem.articles
    assert article["title"] == "Notes, corrected" and article["published"] is True
    assert "<!-- selfpub:file:" in article["body_markdown"]  # the marker stays: find_existing still knows it
    puts = [r for r in forem.fake.requests if r.method == "PUT"]
    assert [r.url.path for r in puts] == [f"/api/articles/{article['id']}"]
    assert "Bluesky post cannot be edited" in updated.output and "nothing was deleted or posted again" in updated.output
    from atproto import Client

    reader = Client(base_url=pds.url)
    reader.login(account.handle, account.password, fetch_bsky_profile=False)
    records = reader.com.atproto.repo.list_records({"repo": account.did, "collection": "app.bsky.feed.post"}).records
    assert len(records) == 1
