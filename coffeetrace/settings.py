"""The one settings class: every knob of coffeetrace, read from COFFEETRACE_* variables.

Defaults run everything on one machine: empty `database_url` and `mqtt_url` mean
"start the embedded PostgreSQL and MQTT broker under `data_dir`".
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from coffeetrace.errors import ConfigError

DEFAULT_STEP_MAX_YIELD: dict[str, float] = {
    # Maximum output kg per input kg for each processing step (see DOMAIN.md):
    # fresh cherry -> dried cherry loses most of its water; dried cherry -> green
    # (hulling) keeps about half; overall cherry -> green is about 1/5.
    "drying": 0.60,
    "hulling": 0.60,
    "wet_processing": 0.45,
    "grading": 1.0,
    "sorting": 1.0,
    "blending": 1.0,
    "roasting": 0.90,
    "packing": 1.0,
    "shipping": 1.0,
    "receiving": 1.0,
    "splitting": 1.0,
    "merging": 1.0,
    # cherry straight to green in one recorded step
    "cherry_to_green": 0.25,
}


# Most kg of a lot of each kind per kg of fresh cherry behind it, over all steps together.
DEFAULT_KIND_MAX_YIELD_FROM_CHERRY: dict[str, float] = {
    "dried_cherry": 0.60,
    "green": 0.25,
    "roasted": 0.225,
}
DEFAULT_TREE_YIELD_FLAG_FACTOR = 3.0
DEFAULT_TYPICAL_TREE_CHERRY_KG = 10.0
DEFAULT_STEP_CLOCK_SKEW_S = 300.0
# Shipments: a receipt whose loss (shipped kg less received kg) is more than this share of
# the shipped kg is flagged with its figures (moisture shrink, spillage; trace/shipments.py).
DEFAULT_SHIPMENT_LOSS_TOLERANCE_PCT = 0.5


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="COFFEETRACE_", env_file=".env", extra="ignore", frozen=True
    )

    # --- where things live -------------------------------------------------
    data_dir: Path = Field(
        Path(".coffeetrace"),
        description="Folder for the embedded database, broker data and generated keys.",
    )
    database_url: str = Field(
        "",
        description="PostgreSQL URL (postgresql://user@host:port/db). Empty: embedded PostgreSQL.",
    )
    mqtt_url: str = Field(
        "",
        description="Broker URL (mqtt://user:password@host:port). Empty: embedded broker.",
    )

    # --- embedded servers --------------------------------------------------
    embedded_pg_port: int = Field(54329, description="Port of the embedded PostgreSQL.")
    embedded_mqtt_port: int = Field(18830, description="Port of the embedded MQTT broker.")

    # --- database pool -----------------------------------------------------
    db_pool_min: int = Field(1, description="Minimum connections in the pool.")
    db_pool_max: int = Field(10, description="Maximum connections in the pool.")
    db_connect_timeout_s: float = Field(5.0, description="Seconds to wait for the database.")

    # --- MQTT / ingest -----------------------------------------------------
    topic_prefix: str = Field(
        "coffeetrace/v1", description="Versioned topic prefix devices publish under."
    )
    mqtt_client_id: str = Field(
        "coffeetrace-ingest",
        description="Fixed client id of the ingest consumer (persistent session).",
    )
    mqtt_shared_group: str = Field(
        "",
        description="Shared-subscription group; set it to run several ingest processes.",
    )
    mqtt_session_expiry_s: int = Field(
        7 * 24 * 3600, description="How long the broker keeps the consumer's session."
    )
    ingest_batch_size: int = Field(2000, description="Messages per database transaction.")
    ingest_batch_bytes: int = Field(
        1024 * 1024,
        gt=0,
        description="Most payload bytes per database transaction (a larger "
        "message goes alone); a batch closes at this or at COFFEETRACE_INGEST_BATCH_SIZE, "
        "whichever comes first.",
    )
    ingest_max_delay_ms: int = Field(
        200,
        description="Longest a batch gathers messages before it goes to the worker "
        "(ingest uses at most 10 ms; while the worker is busy, the batch waits for it).",
    )
    ingest_max_payload_bytes: int = Field(256 * 1024, description="Larger payloads are rejected.")
    ingest_clock_skew_s: int = Field(
        300, description="How far in the future a device timestamp may be."
    )
    ingest_ledger_retention_days: int = Field(
        30, description="Days a reading set's id is remembered against resends (0: forever)."
    )
    ingest_metrics_port: int = Field(
        9108, description="Prometheus metrics port of `coffeetrace ingest` (0: off)."
    )
    ingest_metrics_host: str = Field(
        "127.0.0.1",
        description="Address the ingest metrics and health endpoints listen on (0.0.0.0 for a "
        "Prometheus in another container).",
    )
    ingest_device_cache_ttl_s: float = Field(
        60.0, description="Seconds a cached device or tree binding is trusted before a re-read."
    )
    ingest_dead_letter_payload_chars: int = Field(
        4096, description="Raw payload characters kept in a dead-letter row."
    )
    ingest_max_json_depth: int = Field(
        8,
        ge=2,
        le=64,
        description="Most levels of nested arrays/objects in a payload (a "
        "reading-set array needs 3); deeper payloads are dead-lettered as too_deep.",
    )
    ingest_max_sets_per_message: int = Field(
        1000,
        ge=1,
        le=100_000,
        description="Most reading sets or harvest events in one "
        "message; a larger array is dead-lettered whole as too_many_sets.",
    )
    ingest_device_msgs_per_s: float = Field(
        10.0,
        ge=0,
        description="Messages per second one device may send, sustained (token "
        "bucket per device and ingest process; 0: no limit). Beyond it: rate_limited.",
    )
    ingest_device_msgs_burst: int = Field(
        1000,
        ge=1,
        description="Messages a device may send at once above its rate (also "
        "the backlog per device admitted when ingest reconnects).",
    )
    ingest_device_sets_per_s: float = Field(
        200.0,
        ge=0,
        description="Reading sets and harvest events per second one device may "
        "send, sustained (0: no limit).",
    )
    ingest_device_sets_burst: int = Field(
        50_000,
        ge=1,
        description="Reading sets a device may send at once above its rate "
        "(an offline buffer's flush).",
    )
    ingest_dead_letters_per_device_hour: int = Field(
        100,
        ge=0,
        description="Dead-letter rows kept per device and hour; beyond it they "
        "are only counted (dead_letter_hours, metric coffeetrace_ingest_dead_letters_dropped).",
    )
    ingest_dead_letter_retention_days: int = Field(
        30, ge=0, description="Days dead letters and their hourly counts are kept (0: forever)."
    )
    ingest_stall_s: float = Field(
        60.0,
        gt=0,
        description="Ingest reports not ready (/readyz 503) when messages have "
        "waited this long and nothing was committed meanwhile.",
    )
    mqtt_ingest_username: str = Field(
        "coffeetrace-ingest",
        description="Broker user of the ingest consumer, written by `coffeetrace broker-config`.",
    )
    mqtt_ingest_password: str = Field(
        "",
        description="Its password for `coffeetrace broker-config` (empty: the one in mqtt_url).",
    )
    mqtt_broker_auth: Literal["dynsec", "files", "none"] = Field(
        "files",
        description="How the broker learns device credentials: `dynsec` (Mosquitto's dynamic "
        "security plugin; devices created, rotated or disabled through the API or CLI take "
        "effect at once over `$CONTROL`), `files` (password and ACL files from `coffeetrace "
        "broker-config`, applied on the broker's reload), `none` (a broker that takes anyone).",
    )
    mqtt_control_username: str = Field(
        "coffeetrace-control",
        description="Broker user the API and CLI manage the dynamic security plugin with "
        "(COFFEETRACE_MQTT_BROKER_AUTH=dynsec); a name no device may take.",
    )
    mqtt_control_password: str = Field(
        "",
        description="Its password (needed with COFFEETRACE_MQTT_BROKER_AUTH=dynsec).",
    )
    mqtt_control_timeout_s: float = Field(
        5.0,
        gt=0,
        description="Seconds the API waits for the broker to confirm a credential change "
        "before it refuses the request (503) and rolls it back.",
    )
    broker_reconcile_s: float = Field(
        60.0,
        ge=0,
        description="Seconds between the API's rounds that hold the broker to the device "
        "registry when COFFEETRACE_MQTT_BROKER_AUTH is dynsec (a device disabled or deleted "
        "behind the API's back, with psql, is refused by the broker within this time). "
        "0: never.",
    )

    # --- API ---------------------------------------------------------------
    api_host: str = Field("127.0.0.1", description="Address the API listens on.")
    api_port: int = Field(8000, description="Port the API listens on.")
    public_base_url: str = Field(
        "http://127.0.0.1:8000",
        description="Base URL printed in QR codes and Digital Link URIs.",
    )
    page_cache_entries: int = Field(
        2048, description="Rendered public pages kept in memory (0: render every request)."
    )
    page_cache_recheck_s: float = Field(
        1.0,
        description="Seconds a cached lot page is served before its chain head is re-read.",
    )
    page_cache_ttl_s: float = Field(
        60.0,
        description="Longest a cached public page or verify answer lives (sensor charts move "
        "on; the tamper badge re-verifies the lot at the latest after this).",
    )
    page_verify_max_age_s: float = Field(
        86400.0,
        ge=0,
        description="Longest a lot page's verification badge shows a stored result: a page "
        "render after this verifies the lot against the chain again (so does every "
        "/l/{id}/verify answer, which stores its result for the badge). 0: every render.",
    )
    page_max_age_s: int = Field(
        60, ge=0, description="Cache-Control max-age of public pages, for browsers and CDNs."
    )
    page_stale_while_revalidate_s: int = Field(
        300,
        ge=0,
        description="Cache-Control stale-while-revalidate of public pages: how long a CDN "
        "or browser may serve a page past its max-age while it fetches it again "
        "(conditional, with its ETag). 0: not sent.",
    )
    public_lookups_per_minute: float = Field(
        60.0,
        ge=0,
        description="Public lookups per minute one client address may make, sustained: "
        "Digital Link lookups not remembered, page renders on a cache miss, /l/{id}/verify "
        "(token bucket per address and API process; cached pages cost nothing; 0: no limit).",
    )
    public_lookups_burst: int = Field(
        60, ge=1, description="Public lookups a client may make at once above its rate."
    )
    public_miss_cost: float = Field(
        5.0,
        ge=1,
        description="Lookups a lookup that finds nothing (a 404: a guessed lot code) counts as.",
    )
    public_rate_clients: int = Field(
        10_000,
        ge=1,
        description="Client addresses whose buckets are kept in memory (least recent dropped).",
    )
    # request limits, served-connection limits, response headers (api/hardening.py)
    api_max_body_bytes: int = Field(
        1024 * 1024,
        ge=0,
        description="Largest request body, in bytes; larger ones get 413 before the body "
        "is read or the key checked (a plot's polygon of 20,000 vertices fits).",
    )
    api_max_lot_body_bytes: int = Field(
        8 * 1024 * 1024,
        ge=0,
        description="Largest body of POST /v1/lots, whose harvest_ids may name a whole "
        "season's harvests (about 200,000 ids).",
    )
    api_keep_alive_s: int = Field(
        5,
        ge=1,
        description="Seconds an idle keep-alive connection stays open after a response "
        "(uvicorn timeout_keep_alive; the head's own limit: COFFEETRACE_API_HEADER_TIMEOUT_S).",
    )
    api_limit_concurrency: int = Field(
        1000,
        ge=0,
        description="Open connections plus running requests per API process beyond which "
        "new requests get 503 (uvicorn limit_concurrency; 0: no limit).",
    )
    api_worker_healthcheck_s: int = Field(
        60,
        ge=1,
        description="Seconds uvicorn's supervisor (`coffeetrace api --workers N`, N > 1) "
        "waits for a worker process to start or to answer its health check before it "
        "replaces it (uvicorn timeout_worker_healthcheck; its 5 s killed workers still "
        "importing on a busy machine, over and over).",
    )
    api_backlog: int = Field(
        2048, ge=1, description="Connections the kernel queues before the API accepts them."
    )
    api_max_header_bytes: int = Field(
        16 * 1024,
        ge=1024,
        description="Largest request line plus headers; larger: 431 and the connection "
        "closed (api/serving.py, both parsers; h11 also refuses with 400 beyond it).",
    )
    api_header_timeout_s: float = Field(
        10.0,
        ge=0,
        description="Seconds a connection has to send a whole request head, from opening "
        "or from its previous response; later: 408 and closed (slowloris). 0: no limit.",
    )
    api_forwarded_allow_ips: str = Field(
        "127.0.0.1",
        description="Comma-separated proxy addresses whose X-Forwarded-For/-Proto the API "
        "trusts (uvicorn forwarded_allow_ips; `*`: any, only behind a proxy on a private "
        "network).",
    )
    api_hsts_seconds: int = Field(
        0,
        ge=0,
        description="Strict-Transport-Security max-age on every response; set it only when "
        "the API is reached over HTTPS (0: no HSTS header).",
    )
    api_gzip_min_bytes: int = Field(
        1024,
        ge=0,
        description="Responses at least this large are gzipped for clients that accept it "
        "(HTML, JSON, SVG; not PNG or PDF; 0: never compress).",
    )

    # --- console (/console: people's logins, api/console/, docs/console.md) ----
    console_session_max_age_s: int = Field(
        12 * 3600,
        ge=60,
        description="Longest a console session lives from its login, in seconds.",
    )
    console_session_idle_s: int = Field(
        2 * 3600,
        ge=60,
        description="A console session unused for this many seconds ends.",
    )
    console_cookie_secure: bool = Field(
        False,
        description="Always mark the console's cookies Secure (they are anyway when the "
        "request came over HTTPS, as the proxy's X-Forwarded-Proto says).",
    )
    console_login_max_failures_per_account: int = Field(
        5,
        ge=1,
        description="Failed console logins of one account within "
        "COFFEETRACE_CONSOLE_LOGIN_WINDOW_S after which its logins are refused (429) until "
        "the window has passed.",
    )
    console_login_max_failures_per_address: int = Field(
        20,
        ge=1,
        description="Failed console logins from one client address, of any account, "
        "within the window after which that address's logins are refused (429).",
    )
    console_login_window_s: int = Field(
        900, ge=1, description="Seconds over which failed console logins are counted."
    )
    console_password_min_length: int = Field(
        10, ge=8, le=128, description="Fewest characters of a console user's password."
    )
    console_time_zone: str = Field(
        "Asia/Ho_Chi_Minh",
        description="IANA time zone of the console's days (harvest today, date filters) "
        "and of the times it shows.",
    )
    console_device_silent_s: int = Field(
        3600,
        ge=60,
        description="A device not heard of for this many seconds is listed as silent on "
        "the console's Today screen (its last 7 days are looked at).",
    )
    console_page_rows: int = Field(
        200,
        ge=10,
        le=5000,
        description="Most rows a console list shows at once (harvests, lots); a filter narrows it.",
    )

    # --- trace -------------------------------------------------------------
    keys_dir: Path | None = Field(
        None,
        description="Directory of each cooperative's Ed25519 signing keys and its latest "
        "checkpoint (outside the database; 0700, private keys 0600). Empty: {data_dir}/keys.",
    )
    checkpoint_interval_s: float = Field(
        300.0,
        ge=0,
        description="Seconds between the API's signed checkpoints of chains that grew (ingest "
        "batches); lot writes sign one at once. 0: only on writes and `coffeetrace checkpoint`.",
    )
    step_max_yield: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_STEP_MAX_YIELD),
        description="Maximum yield per processing step, JSON object.",
    )
    kind_max_yield_from_cherry: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_KIND_MAX_YIELD_FROM_CHERRY),
        description="Most kg of a lot of this kind per kg of fresh cherry behind it, over all"
        " steps together (JSON object; e.g. cherry to green at most 0.25).",
    )
    tree_yield_flag_factor: float = Field(
        DEFAULT_TREE_YIELD_FLAG_FACTOR,
        description="Flag a tree whose season total exceeds this many typical yields.",
    )
    typical_tree_cherry_kg: float = Field(
        DEFAULT_TYPICAL_TREE_CHERRY_KG,
        description="Typical fresh-cherry kg per mature tree per season (about 2 kg green,"
        " DOMAIN.md); the plausibility flags compare season totals with it.",
    )
    step_clock_skew_s: float = Field(
        DEFAULT_STEP_CLOCK_SKEW_S,
        ge=0,
        description="How far in the future a processing step's occurred_at may be (clock "
        "skew of the recording phone or office); later ones are refused.",
    )
    shipment_loss_tolerance_pct: float = Field(
        DEFAULT_SHIPMENT_LOSS_TOLERANCE_PCT,
        ge=0,
        le=100,
        description="Percent of a shipment's kg that may be lost between sender and receiver "
        "(moisture shrink in transit) before its receipt is flagged with the figures; "
        "a loss is flagged, never refused.",
    )

    # --- EPCIS 2.0 capture and query (/epcis, docs/epcis.md) ----------------
    epcis_capture_max_events: int = Field(
        10_000,
        ge=1,
        description="Most events in one POST /epcis/capture (GS1-EPCIS-Capture-Limit); "
        "more: 413 CaptureLimitExceededException.",
    )
    epcis_capture_max_bytes: int = Field(
        20 * 1024 * 1024,
        ge=1,
        description="Largest body of POST /epcis/capture, in bytes "
        "(GS1-EPCIS-Capture-File-Size-Limit); larger: 413 before the body is read.",
    )
    epcis_capture_max_depth: int = Field(
        64,
        ge=8,
        le=200,
        description="Most levels of nested arrays and objects in a captured document; "
        "deeper: 400 ValidationException (the body is refused before it is stored).",
    )
    epcis_capture_poll_s: float = Field(
        5.0,
        gt=0,
        description="Seconds between the API's looks for capture jobs it did not accept "
        "itself (another API process's, or left by a restart); its own start at once.",
    )
    epcis_max_per_page: int = Field(
        1000,
        ge=1,
        description="Most events in one page of an EPCIS query (a larger perPage is cut "
        "to it; the default is 30).",
    )
    epcis_deliver_poll_s: float = Field(
        2.0,
        gt=0,
        description="Seconds between the API's rounds of EPCIS subscription callbacks "
        "(streaming ones see new events within about this).",
    )
    epcis_webhook_allow_private: bool = Field(
        False,
        description="Let EPCIS subscriptions call loopback, private and link-local "
        "addresses (refused by default: a webhook dest is the subscriber's input).",
    )
    epcis_webhook_timeout_s: float = Field(
        10.0,
        gt=0,
        le=120,
        description="Seconds one EPCIS subscription callback may take (connect, send, "
        "answer); longer counts as a failure and is retried.",
    )
    epcis_webhook_max_bytes: int = Field(
        1024 * 1024,
        ge=1024,
        description="Most bytes of events in one EPCIS subscription callback (more "
        "events go in the next one; an event larger than this goes alone).",
    )
    epcis_webhook_max_events: int = Field(
        100,
        ge=1,
        description="Most events in one EPCIS subscription callback.",
    )
    epcis_webhook_retry_base_s: float = Field(
        2.0,
        gt=0,
        description="First wait before an EPCIS callback that failed is retried; it "
        "doubles with each failure in a row, up to COFFEETRACE_EPCIS_WEBHOOK_RETRY_MAX_S.",
    )
    epcis_webhook_retry_max_s: float = Field(
        600.0,
        gt=0,
        description="Longest wait between retries of a failing EPCIS subscription.",
    )
    epcis_webhook_failing_after: int = Field(
        5,
        ge=1,
        description="Failed callbacks in a row after which an EPCIS subscription is "
        "marked failing (it is still retried; a 2xx makes it active again).",
    )

    # --- EUDR evidence and readiness (trace/eudr_evidence.py) -----------------
    eudr_max_cherry_kg_per_ha: float = Field(
        20_000.0,
        gt=0,
        description="Most fresh-cherry kg one hectare can give in one season: a lot whose "
        "plots gave more is a declaration in excess and blocks its statement. 20 t: the "
        "province's replanting target of 3.5 t green coffee/ha at about 5 kg cherry per kg "
        "green is 17.5 t, plus headroom for the conversion's spread (the mean is 2.3-2.5 t "
        "green/ha, about 12 t cherry; ../shared/DOMAIN.md).",
    )
    eudr_screening_max_rows: int = Field(
        10_000,
        ge=1,
        description="Most rows in one screening import (CSV or JSON); a larger file is "
        "refused whole (split it).",
    )
    eudr_screening_max_bytes: int = Field(
        2 * 1024 * 1024,
        ge=1024,
        description="Most bytes of one screening import file.",
    )
    # --- EUDR Information System (`coffeetrace dds`, euis/) -----------------
    eudr_environment: Literal["acceptance", "production"] = Field(
        "acceptance",
        description="The EU Information System `coffeetrace dds` files statements in: "
        "`acceptance` (training, no legal value) or `production` (legal value).",
    )
    eudr_base_url: str = Field(
        "",
        description="Base URL of the EU's web services (ending /tracesnt/ws/). Empty: that "
        "of COFFEETRACE_EUDR_ENVIRONMENT.",
    )
    eudr_username: str = Field(
        "", description="EU Login username of the operator's web service user."
    )
    eudr_auth_key: str = Field(
        "",
        repr=False,
        description="Its authentication key (profile, Web Services Access): only its "
        "digest is sent; never logged.",
    )
    eudr_client_id: str = Field(
        "",
        description="WebServiceClientId header, as the profile's Web Services Access shows "
        "it. Empty: `eudr-test` in acceptance; production needs it set.",
    )
    eudr_calls_per_s: float = Field(
        5.0,
        gt=0,
        le=5,
        description="Most calls per second to the EU services from one process (the EU "
        "allows 5 per IP address).",
    )
    eudr_timeout_s: float = Field(
        120.0, gt=0, description="Seconds to wait for one answer of the EU services."
    )

    @property
    def embedded_database(self) -> bool:
        return not self.database_url

    @property
    def embedded_broker(self) -> bool:
        return not self.mqtt_url

    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"postgresql://postgres@127.0.0.1:{self.embedded_pg_port}/coffeetrace"

    def effective_keys_dir(self) -> Path:
        return self.keys_dir if self.keys_dir else Path(self.data_dir) / "keys"

    def effective_mqtt_url(self) -> str:
        if self.mqtt_url:
            return self.mqtt_url
        return f"mqtt://127.0.0.1:{self.embedded_mqtt_port}"


def get_settings(**overrides: object) -> Settings:
    """Read settings from the environment, with explicit overrides winning.

    An invalid value becomes a ConfigError that names the environment variable to fix.
    """

    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = "COFFEETRACE_" + str(err["loc"][0]).upper() if err["loc"] else "settings"
            problems.append(f"{name}: {err['msg']} (got {err.get('input')!r})")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None


def settings_markdown() -> str:
    """The README's configuration table, generated from the class so the two cannot drift."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        shown = "(empty)" if default == "" else f"`{default}`"
        if isinstance(default, dict):
            shown = "see `coffeetrace/settings.py`"
        lines.append(f"| `COFFEETRACE_{name.upper()}` | {shown} | {field.description or ''} |")
    return "\n".join(lines)
