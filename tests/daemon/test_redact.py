"""Redaction (daemon/redact.py) on real-looking URLs: provider RPC keys in the path, database passwords,
tokens in userinfo, query and fragment; and properties: a generated secret in any of those places never
comes out, while hosts and the paths of ordinary URLs do."""

from __future__ import annotations

import base64
import json
import uuid
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from config.settings import Settings
from daemon.redact import MASK, Redactor, looks_like_key, redact, redact_url, secret_values, url_secrets

PROPERTY = settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])

HEX32 = "9aa3d95b3bc440fa88ea12eaa4456161"
ALCHEMY = "Kq8Y3xjXq7Z-2bX_hO3Lq9sHk4yLmN0p"
QN = "3f5c0e8b1d2a4c6e8f0a1b2c3d4e5f6a7b8c9d0e"
ANKR = "4d1c9e7b2a3f5e6d8c0b1a2f3e4d5c6b7a8f9e0d1c2b3a4f5e6d7c8b9a0f1e2d"
UUID = "0b3e5a9c-1f2d-4e8a-9b7c-6d5e4f3a2b1c"
B58 = "3yZe7d3GmHq1LsK9nP2rTt8vWxYz4AbCdEf"
TENDERLY = "4Xf8Gm2KpQ9rTzVbN6wYc1"
ULID = "01HXJ3K4M5N6P7Q8R9S0T1V2W3"
TG = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"

# (URL, the secret in it): RPC providers with the key in the path, the query or the userinfo, and the rest.
PROVIDERS = [
    (f"https://mainnet.infura.io/v3/{HEX32}", HEX32),
    (f"wss://mainnet.infura.io/ws/v3/{HEX32}", HEX32),
    (f"https://sepolia.infura.io/v3/{HEX32}?foo=bar", HEX32),
    (f"https://eth-mainnet.g.alchemy.com/v2/{ALCHEMY}", ALCHEMY),
    (f"wss://base-mainnet.g.alchemy.com/v2/{ALCHEMY}", ALCHEMY),
    (f"https://eth-mainnet.g.alchemy.com/nft/v3/{ALCHEMY}/getNFTsForOwner?owner=vitalik.eth", ALCHEMY),
    ("https://eth-mainnet.g.alchemy.com/v2/demo", "demo"),  # known provider: any key shape
    (f"https://summer-silent-wave.quiknode.pro/{QN}/", QN),
    (f"https://black-icy-sea.base-mainnet.quiknode.pro/{QN}", QN),
    (f"https://rpc.ankr.com/eth/{ANKR}", ANKR),
    (f"https://rpc.ankr.com/multichain/{ANKR}", ANKR),
    (f"https://nd-123-456-789.p2pify.com/{HEX32}", HEX32),
    (f"https://ethereum-mainnet.core.chainstack.com/{HEX32}", HEX32),
    (f"https://eth-mainnet.blastapi.io/{UUID}", UUID),
    (f"https://go.getblock.io/{HEX32}/", HEX32),
    (f"https://lb.drpc.org/ogrpc?network=ethereum&dkey={B58}", B58),
    (f"https://lb.drpc.org/ethereum/{B58}", B58),
    (f"https://mainnet.gateway.tenderly.co/{TENDERLY}", TENDERLY),
    (f"https://eth.nownodes.io/{UUID}", UUID),
    (f"https://eth-mainnet.gateway.pokt.network/v1/lb/{HEX32[:24]}", HEX32[:24]),
    (f"https://eth.llamarpc.com/rpc/{ULID}", ULID),
    (f"https://ethereum.blockpi.network/v1/rpc/{HEX32}", HEX32),
    (f"https://api.developer.coinbase.com/rpc/v1/base/{TENDERLY}", TENDERLY),
    (f"https://mainnet.helius-rpc.com/?api-key={UUID}", UUID),
    (f"https://api.etherscan.io/api?module=account&action=balance&address=0xde0b295669a9fd93d5f28d9ec85e40f4cb697bae&apikey={B58}", B58),
    (f"https://eth.api.onfinality.io/rpc?apikey={UUID}", UUID),
    (f"https://base.example-rpc.net/{B58}", B58),  # an unknown provider: a key-shaped segment
    (f"https://:{HEX32}@ipfs.infura.io:5001/api/v0/add", HEX32),
    (f"https://{ALCHEMY}@rpc.example.org/", ALCHEMY),  # a token as the user name
    (f"https://{ALCHEMY}:@api.example.com/v1/charges", ALCHEMY),
    ("https://x-access-token:ghs_16C7e42F292c6912E7710c838347Ae178B4a@github.com/org/repo.git",
     "ghs_16C7e42F292c6912E7710c838347Ae178B4a"),
    (f"https://example.com/callback#access_token={ALCHEMY}&token_type=bearer", ALCHEMY),
    (f"https://example.com/feed.xml?token={ALCHEMY}", ALCHEMY),
    (f"https://api.example.com/v1/items?X-Amz-Signature={HEX32}&X-Amz-Expires=300", HEX32),
    (f"https://api.telegram.org/bot{TG}/sendMessage", TG),
    ("https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX", "XXXXXXXXXXXXXXXXXXXXXXXX"),
    (f"https://discord.com/api/webhooks/123456789012345678/{ALCHEMY}", ALCHEMY),
    (f"https://x.example.com/login?next={quote(f'https://mainnet.infura.io/v3/{HEX32}', safe='')}", HEX32),
]

PASSWORD = "Tr0ub4dor&3-horse"
DATABASES = [
    ("postgresql://selfpub:s3cret-Pa55word@db.internal:5432/selfpub", "s3cret-Pa55word"),
    (f"postgresql+psycopg://selfpub:{quote(PASSWORD, safe='')}@10.0.0.5/selfpub", PASSWORD),
    ("postgresql://bob:p%40ss%2Fw%3Ard%20x@db/x", "p@ss/w:rd x"),
    ("postgresql://bob:p%40ss%2Fw%3Ard%20x@db/x", "p%40ss%2Fw%3Ard%20x"),
    ("postgresql://bob:p@ss@w0rd@db.example.com:5432/x", "p@ss@w0rd"),  # unescaped '@': still masked whole
    ("postgresql://bob:pa/ss?wo#rd@db.example.com/x", "pa/ss?wo#rd"),  # unescaped '/', '?', '#'
    ("postgres://u:hunter2hunter2@localhost/db?sslmode=require", "hunter2hunter2"),
    ("postgresql://u@db/x?password=hunter2hunter2&sslmode=verify-full", "hunter2hunter2"),
    ("postgresql://u@db/x?sslpassword=keypass123&sslcert=/etc/ssl/client.crt", "keypass123"),
    ("mysql+pymysql://root:r00tpass!@127.0.0.1:3306/app", "r00tpass!"),
    ("redis://:redis-secret-42@cache.internal:6379/0", "redis-secret-42"),
    ("postgresql://:only-a-password@db/x", "only-a-password"),
]

# Ordinary URLs: nothing in them is a secret, so they come out unchanged.
ORDINARY = [
    "https://dev.to/api/articles/me/all?page=2&per_page=30",
    "https://bsky.social",
    "http://127.0.0.1:8545",
    "http://[::1]:8545/",
    "https://blog.rust-lang.org/feed.xml",
    "https://example.com/2024/05/20/python-3-13-ships-an-experimental-jit-compiler/?utm_source=rss#comments",
    "https://news.google.com/rss/search?q=sqlite%20jsonb&hl=en-US&gl=US&ceid=US:en",
    "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
    "https://etherscan.io/address/0xde0b295669a9fd93d5f28d9ec85e40f4cb697bae",
    "https://rpc.ankr.com/eth",
    "https://cloudflare-eth.com/v1/mainnet",
    "https://lb.drpc.org/ogrpc?network=ethereum",
    "postgresql://postgres@127.0.0.1:5432/test?options=-csearch_path%3Dt_0123abcd",
    "sqlite:////var/lib/selfpub/selfpub.db",
    "sqlite:///relative.db",
    "https://api.openai.com/v1",
    "https://example.com/oauth?response_type=code&token_type=bearer&author=jane",
]


@pytest.mark.parametrize(("url", "secret"), PROVIDERS, ids=[u.split("/")[2][-30:] for u, _ in PROVIDERS])
def test_provider_keys_are_masked_and_the_host_kept(url: str, secret: str) -> None:
    shown = redact_url(url)
    assert secret not in shown and MASK in shown, shown
    host = url.split("://", 1)[1].rpartition("@")[2].split("/")[0].split("?")[0]
    assert host in shown
    assert any(secret in part or quote(secret, safe="") in part for part in url_secrets(url))
    # the same URL inside text: an error message, a JSON log line, a logfmt value
    for text in (f"401 Unauthorized for url: {url}.", json.dumps({"url": url}), f'url="{url}" status=401'):
        assert secret not in redact(text), text


def test_the_provider_table_is_big_enough() -> None:
    assert len(PROVIDERS) >= 20 and len({u.split("/")[2] for u, _ in PROVIDERS}) >= 20


@pytest.mark.parametrize(("url", "secret"), DATABASES)
def test_database_passwords_are_masked(url: str, secret: str) -> None:
    shown = redact_url(url)
    assert MASK in shown and not [p for p in _pieces(secret, 4, url.replace(secret, "")) if p in shown], shown
    assert secret not in redact(f"could not connect to {url}: timeout")


def test_a_database_url_keeps_user_host_port_and_database() -> None:
    assert redact_url("postgresql+psycopg://selfpub:pw@db.internal:5432/selfpub?sslmode=require") == (
        f"postgresql+psycopg://selfpub:{MASK}@db.internal:5432/selfpub?sslmode=require")


@pytest.mark.parametrize("url", ORDINARY)
def test_ordinary_urls_come_out_unchanged(url: str) -> None:
    assert redact_url(url) == url
    assert redact(f"fetched {url} in 3 ms") == f"fetched {url} in 3 ms"


@pytest.mark.parametrize(("text", "kept"), [
    ("python-3-13-jit-compiler-released", False), ("index.html", False), ("v3", False), ("2024", False),
    ("1790000000000000000", False), ("0xde0b295669a9fd93d5f28d9ec85e40f4cb697bae", False),
    (HEX32, True), (UUID, True), (ALCHEMY, True), (B58, True), (ULID, True), (TG, True), ("0" * 32, True),
])
def test_what_looks_like_a_key(text: str, kept: bool) -> None:
    assert looks_like_key(text) is kept


def test_secret_values_learns_the_secret_parts_of_the_settings_urls() -> None:
    s = Settings(wallet={"rpc_url": f"https://mainnet.infura.io/v3/{HEX32}"},
                 tracing={"otlp_endpoint": f"https://collector:{quote(PASSWORD, safe='')}@otel.example.com/v1/traces"})
    s = s.model_copy(update={"publishers": s.publishers.model_copy(update={
        "devto": s.publishers.devto.model_copy(update={"api_key_value": SecretStr("devto-key-123")})})})
    values = secret_values(s)
    assert {PASSWORD, HEX32, "devto-key-123"} <= values
    # ... so the key is masked where it shows up without its URL (a node's error echoing the project id)
    r = Redactor(values)
    assert r.redact(f"invalid project id {HEX32}") == f"invalid project id {MASK}"
    # a short password is masked inside its URL, but not learnt as a value (it would mask ordinary words)
    short = Settings(tracing={"otlp_endpoint": "https://u:postgres@otel.example.com/v1/traces"})
    assert "postgres" not in secret_values(short)
    assert redact_url(short.tracing.otlp_endpoint) == f"https://u:{MASK}@otel.example.com/v1/traces"


# -- properties ------------------------------------------------------------------------------------------

HOSTS = ["db.internal", "rpc.example.net", "api.example.org", "10.1.2.3", "node-1.chain.test"]
# Where the URL's structure alone says "secret" (a known provider, userinfo, a secret-named parameter).
PROVIDER_TEMPLATES = [u.replace(s, "{key}") for u, s in PROVIDERS
                      if u.count(s) == 1 and s != "demo" and "example-rpc.net" not in u and "%2F" not in u]
SLUG_WORDS = st.sampled_from(["news", "2024", "05", "python", "Release", "notes", "feed", "rss", "JIT", "api", "v1",
                              "index.html", "feed.xml", "posts", "sqlite-3-46", "atom"])
SECRET_NAMES = st.sampled_from(["key", "apikey", "api_key", "api-key", "token", "access_token", "secret", "password",
                                "auth", "signature", "sig", "X-Amz-Signature", "client_secret", "dkey", "auth_token"])
B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _b58(n: int) -> str:
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = B58_ALPHABET[r] + out
    return out


# What providers hand out: 128 to 256 random bits as hex, base58, base64url or a UUID.
machine_keys = st.builds(
    lambda n, form: {
        "hex": lambda: f"{n:032x}",
        "b58": lambda: _b58(n),
        "b64": lambda: base64.urlsafe_b64encode(n.to_bytes(32, "big").lstrip(b"\0")).decode().rstrip("="),
        "uuid": lambda: str(uuid.UUID(int=n % 2**128)),
    }[form](),
    st.integers(min_value=2**120, max_value=2**256 - 1), st.sampled_from(["hex", "b58", "b64", "uuid"]),
)
# Any text at all: where the URL's structure says "secret", the shape must not matter.
any_secret = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=12, max_size=40)


def _forms(secret: str) -> set[str]:
    return {secret, quote(secret, safe=""), quote(secret)}


def _pieces(secret: str, width: int, besides: str) -> set[str]:
    """Every `width`-long piece of the secret (in each of its forms) that is not also in `besides`."""
    return {f[i:i + width] for f in _forms(secret) for i in range(max(len(f) - width + 1, 1))} - {
        p for p in [f[i:i + width] for f in _forms(secret) for i in range(len(f))] if p in besides}


@st.composite
def url_with_secret(draw: st.DrawFn) -> tuple[str, str, str]:
    """(url, the secret in it, the url with the secret left out): one position of many."""
    host = draw(st.sampled_from(HOSTS))
    path = "/" + "/".join(draw(st.lists(SLUG_WORDS, max_size=3)))
    where = draw(st.sampled_from(["pg", "pg-raw", "userinfo-password", "userinfo-token", "query", "fragment",
                                  "provider-path", "unknown-path"]))
    if where in ("provider-path", "unknown-path"):
        secret = draw(machine_keys) if where == "unknown-path" else draw(st.one_of(machine_keys, any_secret))
        template = (draw(st.sampled_from(PROVIDER_TEMPLATES)) if where == "provider-path"
                    else f"https://{host}{path.rstrip('/')}/{{key}}/rpc")
        return template.replace("{key}", quote(secret, safe="")), secret, template.replace("{key}", "")
    if where == "pg-raw":  # as people paste them: special characters unescaped (no white space or quotes)
        secret = draw(st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="\"'`<>\\"),
                              min_size=12, max_size=40))
        return f"postgresql://selfpub:{secret}@{host}:5432/selfpub", secret, f"postgresql://selfpub:@{host}:5432/selfpub"
    secret = draw(any_secret)
    enc = quote(secret, safe="")
    name = draw(SECRET_NAMES)
    template = {
        "pg": f"postgresql+psycopg://selfpub:{{s}}@{host}:5432/selfpub?sslmode=require",
        "userinfo-password": f"https://user:{{s}}@{host}{path}",
        "userinfo-token": f"https://{{s}}@{host}{path}",
        "query": f"https://{host}{path}?page=2&{name}={{s}}&lang=en",
        "fragment": f"https://{host}{path}#state=xyz&{name}={{s}}",
    }[where]
    return template.replace("{s}", enc), secret, template.replace("{s}", "")


@PROPERTY
@given(url_with_secret())
@example(("postgresql://selfpub:p@ss@w0rd!!xx@db.internal:5432/selfpub", "p@ss@w0rd!!xx",
          "postgresql://selfpub:@db.internal:5432/selfpub"))
def test_a_secret_in_any_position_never_comes_out(case: tuple[str, str, str]) -> None:
    url, secret, without = case
    assume(not any(f in without for f in _forms(secret)))  # a secret that is also the host says nothing
    pieces = _pieces(secret, 8, without + MASK + quote(MASK))  # a part of a secret is a leak too
    for shown in (redact_url(url), redact(f"error: POST {url} failed (timeout)"), redact(json.dumps({"u": url}))):
        leaked = sorted(p for p in pieces if p in shown)
        assert not leaked, (url, shown)
        assert redact(shown) == shown  # idempotent: the log handler redacts every line twice


@PROPERTY
@given(st.sampled_from(HOSTS), st.lists(SLUG_WORDS, max_size=4),
       st.lists(st.tuples(st.sampled_from(["page", "q", "lang", "sort", "per_page", "tag"]), SLUG_WORDS), max_size=3),
       st.sampled_from(["", "#top", "#section-2"]), st.sampled_from(["http", "https", "wss"]),
       st.sampled_from(["", ":8080", ":443"]))
def test_hosts_and_ordinary_paths_survive(host, words, params, fragment, scheme, port) -> None:  # noqa: ANN001
    query = "&".join(f"{k}={v}" for k, v in params)
    url = f"{scheme}://{host}{port}/{'/'.join(words)}" + (f"?{query}" if query else "") + fragment
    assert redact_url(url) == url
    assert redact(f"GET {url} -> 200") == f"GET {url} -> 200"


@pytest.mark.parametrize(("url", "secret"), PROVIDERS + DATABASES)
def test_redacting_twice_changes_nothing_more(url: str, secret: str) -> None:
    once = Redactor([secret]).redact(f"failed: {url}")
    assert Redactor([secret]).redact(once) == once and redact(once) == once


def test_found_by_hypothesis_a_raw_password_holding_at_and_question_mark() -> None:
    """make_url read 'selfpub:000@0000000?@db...' as password '000', host '0000000' and a query: '0000000' leaked."""
    url = "postgresql://selfpub:000@0000000?@db.internal:5432/selfpub"
    assert redact_url(url) == f"postgresql://selfpub:{MASK}@db.internal:5432/selfpub"
