"""`selfpub demo --dir X` never deletes a directory it did not create (issue 14.6)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from daemon.cli import app
from daemon.commands.demo_cmd import MARKER, DirectoryNotOurs, fresh_workdir


def test_a_directory_the_demo_did_not_make_is_never_wiped(tmp_path: Path) -> None:
    precious = tmp_path / "state" / "my-notes.txt"
    precious.parent.mkdir()
    precious.write_text("mine")
    with pytest.raises(DirectoryNotOurs, match="pass an empty or new directory"):
        fresh_workdir(tmp_path)
    assert precious.read_text() == "mine"
    result = CliRunner().invoke(app, ["demo", "--dir", str(tmp_path), "--no-bluesky"])
    assert result.exit_code == 1 and "was not made by `selfpub demo`" in " ".join(result.output.split())
    assert precious.read_text() == "mine" and not (tmp_path / MARKER).exists()


def test_the_demos_own_directory_is_wiped_for_a_new_run(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    fresh_workdir(workdir)  # new: made and marked
    (workdir / "state").mkdir()
    (workdir / "state" / "selfpub.db").write_text("last run")
    (workdir / "notes.txt").write_text("beside the state")
    fresh_workdir(workdir)
    assert not (workdir / "state").exists() and (workdir / MARKER).is_file()
    assert (workdir / "notes.txt").read_text() == "beside the state"  # only state/ and pds/ are wiped


def test_an_empty_directory_is_taken(tmp_path: Path) -> None:
    fresh_workdir(tmp_path)
    assert (tmp_path / MARKER).is_file()
