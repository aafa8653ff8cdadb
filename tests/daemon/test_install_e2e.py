"""Issue 14.4: systemd/README.md's install, run in order the way a user runs it, under a prefix ROOT.

Every line of the `sh` blocks of the sections in SECTIONS runs; a line no rule below knows fails the
test, so the doc and this test move together. What stands in for what (systemd is not PID 1 here):

    /opt/..., /etc/...          -> ROOT/opt/..., ROOT/etc/... (ROOT: a fresh folder under /var/tmp)
    sudo CMD                    -> CMD (the test runs as root)
    sudo -u selfpub CMD         -> CMD as the uid systemd-sysusers made in ROOT, in the unit's sandbox
                                   without the unit: a mount namespace where / and ROOT are read-only
                                   (ProtectSystem=strict), /var/lib/selfpub and /var/cache/selfpub are ROOT's
                                   and writable, /tmp is private; read access through CAP_DAC_READ_SEARCH
                                   only (the test's python lives under /root), writes as that uid
    python3 -m venv DIR         -> a venv whose site-packages also lists .venv's (a .pth line, so that
    pip install WHEEL[local]       `pip install --no-deps WHEEL` needs no index; [local] dropped: the
                                   agents call a stand-in endpoint, the embedded model stays off)
    systemd-sysusers/-tmpfiles  -> with --root=ROOT
    systemd-analyze verify U    -> on U with its paths under ROOT (verify wants ExecStart= to exist)
    sudoedit CONFIG             -> the doc's minimum edits: a local feed, the agents on a stand-in
                                   (and, for the test, [http] port = 0)
    systemd-creds encrypt N     -> as written, with ROOT's host key (ROOT/var/lib/systemd mounted on
                                   /var/lib/systemd); run for devto_api_key only (a user who publishes to
                                   Dev.to only), so the unit's other credentials are missing, which must
                                   not stop it; at start `systemd-creds decrypt` makes $CREDENTIALS_DIRECTORY

Then the unit itself, as systemd would start it: its ExecStart= (paths under ROOT) as that uid in the
sandbox with the environment the unit gives (STATE_DIRECTORY, CACHE_DIRECTORY, CREDENTIALS_DIRECTORY
holding the credentials its LoadCredentialEncrypted= lines find, NOTIFY_SOCKET, HOME, Environment=):
READY=1, the cycle at start publishes to a stand-in Dev.to with the key named by credential, SIGTERM,
exit 0. A read-only command outside the unit needs none of the credentials.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import pytest

from tests.agents.feeds_support import FeedServer
from tests.daemon.conftest import REPO
from tests.daemon.cycle_support import news_feed
from tests.e2e.standins import UsageLLM
from tests.e2e.support import ForemServer

README = REPO / "systemd" / "README.md"
SECTIONS = ("Install", "Check it before you start it", "Put the credentials")
UNIT_NAME = "selfpub.service"
DEVTO_KEY = "YOUR_DEVTO_KEY"  # the doc's placeholder value, which the stand-in Dev.to accepts
USED_CREDENTIALS = {"devto_api_key"}
CREDSTORE = ("etc/credstore.encrypted", "run/credstore.encrypted", "usr/lib/credstore.encrypted",
             "etc/credstore", "run/credstore", "usr/lib/credstore")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="runs the install as root, as the doc's sudo lines do"),
    pytest.mark.skipif(any(shutil.which(t) is None for t in
                           ("systemd-analyze", "systemd-sysusers", "systemd-tmpfiles", "unshare", "setpriv")),
                       reason="needs systemd's tools, unshare and setpriv"),
]


def doc_commands() -> list[tuple[str, str]]:
    """(section, command) for every command line of the `sh` blocks of SECTIONS, in order."""
    found, section, fence = [], "", None
    for line in README.read_text().splitlines():
        if line.startswith("### "):
            section = line[4:].strip()
        elif line.startswith("```"):
            fence = line[3:].strip() if fence is None else None
        elif fence == "sh" and section in SECTIONS:
            command = re.sub(r"\s+#\s.*$", "", line).strip()
            if command and not command.startswith("#"):
                found.append((section, command))
    return found


def test_the_doc_has_the_commands_this_test_runs() -> None:
    sections = [s for s, _ in doc_commands()]
    assert [s for s in SECTIONS if s in sections] == list(SECTIONS)


class Install:
    """ROOT, the stand-ins and the rules that run each doc command there."""

    def __init__(self, root: Path, feed_url: str, llm_url: str, forem_url: str):
        self.root, self.feed_url, self.llm_url, self.forem_url = root, feed_url, llm_url, forem_url
        self.src = root / "src" / "selfpub"
        self.cwd = root / "src"
        self.ran: list[str] = []
        self.outputs: dict[str, str] = {}

    # -- paths ---------------------------------------------------------------------------------

    def under_root(self, text: str) -> str:
        """/opt/..., /etc/... -> ROOT/opt/..., ROOT/etc/... (a path that starts a word or follows '=')."""
        return re.sub(r"(?<![\w.\-/])/(opt|etc)/", f"{self.root}/\\1/", text)

    @property
    def uid(self) -> tuple[int, int]:
        """The selfpub user systemd-sysusers wrote into ROOT/etc/passwd."""
        for line in (self.root / "etc/passwd").read_text().splitlines():
            name, _x, uid, gid, *_ = line.split(":")
            if name == "selfpub":
                return int(uid), int(gid)
        raise AssertionError("systemd-sysusers made no selfpub user in ROOT/etc/passwd")

    # -- running -------------------------------------------------------------------------------

    def sh(self, command: str, cwd: Path | None = None, timeout: float = 300) -> str:
        out = subprocess.run(["bash", "-c", command], cwd=cwd or self.cwd, capture_output=True, text=True,
                             timeout=timeout, check=False)
        assert out.returncode == 0, f"{command}\n{out.stdout}\n{out.stderr}"
        return out.stdout + out.stderr

    def sandbox(self, argv: list[str], env: dict[str, str], cwd: str = "/") -> list[str]:
        """argv as the selfpub uid with / and ROOT read-only, ROOT's state and cache at their real paths."""
        uid, gid = self.uid
        r = shlex.quote(str(self.root))
        script = " && ".join([
            "mount -t tmpfs -o mode=755 tmpfs /var/lib", "mkdir /var/lib/selfpub",
            f"mount --bind {r}/var/lib/selfpub /var/lib/selfpub",
            "mount -t tmpfs -o mode=755 tmpfs /var/cache", "mkdir /var/cache/selfpub",
            f"mount --bind {r}/var/cache/selfpub /var/cache/selfpub",
            f"mount --bind {r} {r}", f"mount -o remount,bind,ro {r}",
            "mount -t tmpfs -o mode=1777 tmpfs /tmp",  # PrivateTmp=
            "mount -o remount,bind,ro /",  # ProtectSystem=strict
            f"cd {shlex.quote(cwd)}",
            "exec setpriv --reuid={} --regid={} --clear-groups --inh-caps=+dac_read_search "
            "--ambient-caps=+dac_read_search -- env -i {} {}".format(
                uid, gid, " ".join(shlex.quote(f"{k}={v}") for k, v in env.items()),
                " ".join(shlex.quote(a) for a in argv)),
        ])
        return ["unshare", "-m", "--propagation", "private", "bash", "-c", script]

    def with_host_key(self, command: str) -> str:
        """COMMAND with ROOT/var/lib/systemd as /var/lib/systemd: systemd-creds' host key is ROOT's, not this machine's."""
        keys = self.root / "var/lib/systemd"
        keys.mkdir(exist_ok=True)
        return (f"unshare -m --propagation private bash -c "
                f"{shlex.quote(f'mount --bind {keys} /var/lib/systemd && {command}')}")

    def as_selfpub(self, command: str) -> str:
        """`sudo -u selfpub CMD` outside the unit: sudo's environment (HOME of the user), no systemd folders."""
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/var/lib/selfpub",
               "USER": "selfpub", "LOGNAME": "selfpub", "COLUMNS": "200", "NO_COLOR": "1"}
        out = subprocess.run(self.sandbox(shlex.split(self.under_root(command)), env), capture_output=True,
                             text=True, timeout=300, check=False)
        assert out.returncode == 0, f"{command}\n{out.stdout}\n{out.stderr}"
        return out.stdout + out.stderr

    def run(self, section: str, command: str) -> None:
        """One doc command, by the rules of the module docstring; an unknown one fails."""
        self.ran.append(command)
        if command == "cd selfpub":
            self.cwd = self.src
        elif command.startswith("python3 -m pip wheel "):
            self.sh(f"{shlex.quote(sys.executable)} {command.removeprefix('python3 ')}")
        elif m := re.fullmatch(r"sudo python3 -m venv (\S+)", command):
            venv = Path(self.under_root(m.group(1)))
            self.sh(f"{shlex.quote(sys.executable)} -m venv {venv}")
            site = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
            # A plain path line (not .venv's .pth files): the test checkout's editable install stays out.
            (site / "zz_selfpub_test_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
        elif m := re.fullmatch(r"sudo (\S+/bin/pip) install (.+)", command):
            self.sh(f"{self.under_root(m.group(1))} install --no-deps {m.group(2).replace('[local]', '')}")
        elif command.startswith("sudo install "):
            self.sh(self.under_root(command.removeprefix("sudo ")), cwd=self.src)
        elif command == "sudo systemd-sysusers && sudo systemd-tmpfiles --create":
            self.sh(f"systemd-sysusers --root={self.root} && systemd-tmpfiles --create --root={self.root}")
        elif m := re.fullmatch(r"sudo systemd-analyze verify (\S+)", command):
            installed = Path(self.under_root(m.group(1)))
            copy = self.root / "verify" / installed.name
            copy.parent.mkdir(exist_ok=True)
            copy.write_text(self.under_root(installed.read_text()))
            self.outputs["verify"] = self.sh(f"systemd-analyze verify {copy}")
        elif command.startswith("sudo /opt/selfpub/.venv/bin/selfpub init "):
            self.outputs["init"] = self.sh(self.under_root(command.removeprefix("sudo ")))
        elif m := re.fullmatch(r"sudoedit (\S+)", command):
            self.minimum_edits(Path(self.under_root(m.group(1))))
        elif command.startswith("sudo -u selfpub "):
            self.outputs[command.split()[-1]] = self.as_selfpub(command.removeprefix("sudo -u selfpub "))
        elif m := re.fullmatch(r"printf %s ('[^']*'|\"[^\"]*\") *\| sudo systemd-creds encrypt --name=([\w-]+) - (\S+)",
                               command):
            if m.group(2) in USED_CREDENTIALS:
                self.sh(self.with_host_key(self.under_root(command.replace("sudo ", ""))))
        else:
            raise AssertionError(f"systemd/README.md, {section}: no rule runs {command!r}; teach this test")

    # -- the doc's edits -------------------------------------------------------------------------

    def minimum_edits(self, config: Path) -> None:
        """feeds -> the local feed; agents -> the stand-in endpoint (the embedded model off); http port 0."""
        text = config.read_text()
        text, n = re.subn(r'^base_url = "embedded"$', f'base_url = "{self.llm_url}"', text, flags=re.M)
        assert n == 4, "expected the four roles on the embedded model"
        text = set_key(text, "[[feeds]]", "url", f'"{self.feed_url}"')
        text = set_key(text, "[http]", "port", "0")
        config.write_text(text)

    def publish_to_devto(self, config: Path) -> None:
        """The credentials section's toml, for Dev.to only: enabled, named by credential, on the stand-in."""
        text = config.read_text()
        for key, value in (("enabled", "true"), ("base_url", f'"{self.forem_url}"'),
                           ("api_key_file", '"devto_api_key"'), ("publish", "true")):
            text = set_key(text, "[publishers.devto]", key, value)
        config.write_text(text)

    # -- the unit, as systemd starts it ---------------------------------------------------------------

    def start_unit(self, notify_path: str) -> subprocess.Popen:
        """ExecStart= of the installed unit, with the folders, credentials and environment systemd gives it."""
        unit = directives((self.root / "etc/systemd/system" / UNIT_NAME).read_text())
        uid, gid = self.uid
        for kind, base in (("StateDirectory", "var/lib"), ("CacheDirectory", "var/cache")):
            for name in unit.get(kind, []):
                folder = self.root / base / name
                folder.mkdir(parents=True, exist_ok=True)
                os.chown(folder, uid, gid)
                folder.chmod(int(unit.get(f"{kind}Mode", ["0755"])[0], 8))
        creds = self.root / "run/credentials" / UNIT_NAME
        creds.mkdir(parents=True)
        for entry in unit.get("LoadCredentialEncrypted", []) + unit.get("LoadCredential", []):
            name, _, path = entry.partition(":")
            if path.startswith("/"):
                source = self.root / path.lstrip("/")
                assert source.exists(), f"systemd would fail the unit: {entry} names a missing file"
            else:  # a name: looked up in the credstore folders, skipped when missing (systemd >= 251)
                source = next((self.root / d / (path or name) for d in CREDSTORE
                               if (self.root / d / (path or name)).is_file()), None)
                if source is None:
                    continue
            target = creds / name
            if entry in unit.get("LoadCredentialEncrypted", []):
                self.sh(self.with_host_key(f"systemd-creds decrypt --name={name} {source} {target}"))
            else:
                shutil.copyfile(source, target)
            os.chown(target, uid, gid)
            target.chmod(0o400)
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/var/lib/selfpub",
               "USER": "selfpub", "LOGNAME": "selfpub", "NOTIFY_SOCKET": notify_path,
               "STATE_DIRECTORY": "/var/lib/selfpub", "CACHE_DIRECTORY": "/var/cache/selfpub",
               "CREDENTIALS_DIRECTORY": str(creds)}
        for assignment in unit.get("Environment", []):
            for pair in shlex.split(assignment):
                key, _, value = pair.partition("=")
                env[key] = value
        argv = shlex.split(self.under_root(unit["ExecStart"][0]))
        log = (self.root / "unit.log").open("w")
        return subprocess.Popen(self.sandbox(argv, env, cwd=unit["WorkingDirectory"][0]), stdout=log,
                                stderr=subprocess.STDOUT)


def directives(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith(("#", "[")):
            k, v = line.split("=", 1)
            found.setdefault(k.strip(), []).append(v.strip())
    return found


def set_key(text: str, table: str, key: str, value: str) -> str:
    """`key = value` in TOML `table` (its line, or its commented-out example line, replaced)."""
    start = text.index(f"\n{table}\n") + len(table) + 2
    end = text.find("\n[", start)
    end = len(text) if end < 0 else end
    body, n = re.subn(rf"^(# )?{re.escape(key)} = .*$", f"{key} = {value}", text[start:end], count=1, flags=re.M)
    assert n == 1, f"no {key} in {table}"
    return text[:start] + body + text[end:]


def copy_checkout(target: Path) -> None:
    """The working tree as a user's checkout: tracked and new files, nothing ignored."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


class Notify:
    """systemd's NOTIFY_SOCKET, in a folder the selfpub uid can reach (outside the private /tmp)."""

    def __init__(self, folder: Path) -> None:
        self.path = str(folder / "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o777)
        self.sock.settimeout(0.2)
        self.messages: list[str] = []

    def wait_for(self, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.messages.extend(self.sock.recv(65536).decode().splitlines())
            except (TimeoutError, BlockingIOError):
                pass
            for m in self.messages:
                if m.startswith(prefix):
                    return m
        raise AssertionError(f"no {prefix} from the unit in {self.messages!r}")


def wait_until(predicate, timeout: float) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.timeout(240)
def test_systemd_readme_installs_and_the_unit_runs() -> None:
    root = Path(tempfile.mkdtemp(prefix="selfpub-root-", dir="/var/tmp"))  # not /tmp: the unit's /tmp is private
    root.chmod(0o755)
    for folder in ("etc/sysusers.d", "etc/tmpfiles.d", "etc/systemd/system", "var/lib", "var/cache", "run", "opt"):
        (root / folder).mkdir(parents=True)
    copy_checkout(root / "src" / "selfpub")
    feeds = FeedServer().start()
    llm = UsageLLM()
    forem = ForemServer(api_key=DEVTO_KEY)
    unit = None
    try:
        with llm.running(), forem.running():
            install = Install(root, news_feed(feeds, 2), llm.url, forem.url)
            for section, command in doc_commands():
                install.run(section, command)

            # The wheel carries every file the packages read at run time.
            wheel = next((install.src / "dist").glob("selfpub-*.whl"))
            venv = root / "opt/selfpub/.venv"
            site = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
            for name in ("config/selfpub.example.toml", "agents/sample/feed.xml", "agents/prompts/writer.yaml",
                         "wallet/contracts/CreditToken.json", "ledger/migrations/script.py.mako"):
                assert (site / name).is_file(), f"{name} is not in {wheel.name}"
            assert sorted(p.name for p in (site / "ledger/migrations/versions").glob("*.py"))
            # ... and it is that copy, not the checkout, that runs.
            where = install.as_selfpub(f"{venv}/bin/python -c 'import daemon; print(daemon.__file__)'")
            assert where.strip() == str(site / "daemon/__init__.py")

            # init --system: nothing next to the config; state_dir left to $STATE_DIRECTORY.
            assert sorted(p.name for p in (root / "etc/selfpub").iterdir()) == ["selfpub.toml"]
            check = " ".join(install.outputs["check"].split())
            assert "state_dir /var/lib/selfpub (the default, state_dir unset)" in check, check
            # The check section's cycle ran outside the unit, from a read-only /etc, into /var/lib/selfpub.
            assert list((root / "var/lib/selfpub/outbox").glob("*.md")), install.outputs["cycle"]
            assert llm.answered

            # Only the Dev.to key was put; the others the unit names are missing, which must not stop it.
            install.publish_to_devto(root / "etc/selfpub/selfpub.toml")
            news_feed(feeds, 4)  # two items the check's cycle has not covered yet
            notify = Notify(root)
            unit = install.start_unit(notify.path)
            notify.wait_for("READY=1", timeout=60)
            assert wait_until(lambda: forem.articles, timeout=90), (root / "unit.log").read_text()[-3000:]
            assert sorted(p.name for p in (root / "run/credentials" / UNIT_NAME).iterdir()) == ["devto_api_key"]
            unit.send_signal(signal.SIGTERM)
            assert unit.wait(timeout=90) == 0, (root / "unit.log").read_text()[-3000:]
            log = (root / "unit.log").read_text()
            assert '"level": "error"' not in log and DEVTO_KEY not in log, log[-3000:]
            assert not forem.errors and not llm.server_errors

            # A report outside the unit needs no credential, though the config names one.
            report = install.as_selfpub(f"{venv}/bin/selfpub --config {root}/etc/selfpub/selfpub.toml ledger report")
            assert "balance" in report
    finally:
        if unit is not None and unit.poll() is None:
            unit.kill()
            unit.wait(timeout=30)
        feeds.stop()
        shutil.rmtree(root, ignore_errors=True)
