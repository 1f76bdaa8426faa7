"""The one table of options, and the one configuration value built from it at the start.

Every `FMS_FHIR_*` variable is a row of `OPTIONS`: its field, how its text is read (with its
bounds), its meaning, and the part that uses it (`core`: the command line and the service;
`service`: the HTTP service only; `page`: the upload page; `gunicorn`: gunicorn.conf.py). The
edges build one frozen `Config` from it once (the CLI's group, `create_app`); a bad value stops
the start with a `ConfigError` naming the variable, and nothing reads the environment later.

    python -m adapter.config --markdown     the table of docs/configuration.md, from OPTIONS
"""

from __future__ import annotations

import difflib
import math
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from adapter import registry
from adapter.settings import MIB, Settings, token_problem

PREFIX = "FMS_FHIR_"
Part = Literal["core", "service", "page", "gunicorn"]
APP_PARTS: tuple[Part, ...] = ("core", "service", "page")
"""What `create_app` and the command line build; gunicorn.conf.py builds the `gunicorn` part."""


class ConfigError(ValueError):
    """A bad configuration value: the start stops, and the message names the variable."""

    def __init__(self, variable: str, reason: str) -> None:
        super().__init__(f"{variable}: {reason}")
        self.variable = variable
        self.reason = reason


# --- the values built ----------------------------------------------------------------------------


def default_folder() -> Path:
    return Path(tempfile.gettempdir()) / f"fms-fhir-page-{os.getuid()}"


@dataclass(frozen=True)
class WebOptions:
    """Options only the HTTP service has."""

    max_concurrent: int = 0
    """Requests one process serves at once before answering 503 (0: no limit)."""
    retry_after: int = 5
    """Seconds in Retry-After on a 503."""
    max_bundle_rows: int = 2000
    """Most sheet rows answered as JSON Bundles (held in memory); NDJSON goes to max_sheet_rows."""
    report_max_bytes: int = 16 * MIB
    """Largest `$report` body (also bounded by the core's max_input_bytes)."""
    report_max_resources: int = 10_000
    """Most resources in one `$report` body."""
    cors_origins: tuple[str, ...] = ()
    """Origins (`https://host[:port]`, or `*`) whose pages may call the FHIR routes; none: off."""


@dataclass(frozen=True)
class PageOptions:
    """Where and for how long the upload page keeps its conversions."""

    folder: Path = field(default_factory=default_folder)
    ttl: int = 3600
    """Seconds a conversion is kept."""
    max_bytes: int = 2048 * MIB
    """All kept conversions together; the oldest are removed first."""
    max_rows: int = 20_000
    """Most rows one upload converts (each row keeps about 50 KB of Bundles on disk)."""


def default_workers() -> int:
    return (os.cpu_count() or 1) + 1


@dataclass(frozen=True)
class ServerOptions:
    """gunicorn's settings (gunicorn.conf.py reads them; the app never does)."""

    bind: tuple[str, ...] = ("127.0.0.1:8080",)
    workers: int = field(default_factory=default_workers)
    timeout: int = 120
    graceful_timeout: int = 30
    max_requests: int = 0
    control_socket: str = ""
    log_level: str = "info"
    gc_freeze: bool = True


@dataclass(frozen=True)
class Config:
    """The one configuration of a run: the core's Settings, the service's and the page's options."""

    settings: Settings = field(default_factory=Settings)
    service: WebOptions = field(default_factory=WebOptions)
    page: PageOptions = field(default_factory=PageOptions)


PART_TYPES: dict[Part, type] = {
    "core": Settings,
    "service": WebOptions,
    "page": PageOptions,
    "gunicorn": ServerOptions,
}
CONFIG_FIELDS: dict[Part, str] = {"core": "settings", "service": "service", "page": "page"}


# --- how a variable's text is read ---------------------------------------------------------------


class Kind:
    """Text -> value (`parse`), the bounds of a value however it was made (`check`), and the
    words the documentation uses (`accepts`, `show`)."""

    secret = False
    """A blank value refuses to start instead of meaning the default."""

    def parse(self, text: str) -> Any:
        raise NotImplementedError

    def check(self, value: Any) -> None:
        """Raises ValueError(reason) when the value is out of bounds."""

    def accepts(self) -> str:
        """The values taken, in words."""
        raise NotImplementedError

    def show(self, value: Any) -> str:
        return str(value)

    def accept(self, value: Any) -> Any:
        """A value given in a mapping: text as in the environment, or a number, flag or path."""
        if isinstance(value, str):
            return self.parse(value)
        if isinstance(value, (bool, int, float, os.PathLike)):
            return self.parse(str(value))
        raise ValueError(f"give text as in the environment, not a {type(value).__name__}")


def _number(text: str, kind: Callable[[str], Any], what: str) -> Any:
    try:
        value = kind(text.strip())
    except ValueError:
        raise ValueError(f"{text.strip()!r} is not {what}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{text.strip()!r} is not a finite number")
    return value


@dataclass(frozen=True)
class Whole(Kind):
    minimum: int = 0
    maximum: int | None = None
    zero: str = ""
    """What 0 means, when it is allowed and means something special."""

    def accepts(self) -> str:
        return f"whole number, {self.bounds()}" + (f" (0: {self.zero})" if self.zero else "")

    def bounds(self) -> str:
        if self.maximum is None:
            return f"{self.minimum} or more"
        return f"{self.minimum} to {self.maximum}"

    def parse(self, text: str) -> int:
        return int(_number(text, int, "a whole number"))

    def check(self, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{value!r} is not a whole number")
        if value < self.minimum or (self.maximum is not None and value > self.maximum):
            raise ValueError(f"{value} is out of bounds: give {self.bounds()}")


@dataclass(frozen=True)
class Scaled(Kind):
    """A positive decimal in a friendly unit (MB, minutes) held as a whole count (bytes, s)."""

    unit: str
    factor: int

    def accepts(self) -> str:
        return f"{self.unit}, more than 0 (decimals allowed)"

    def parse(self, text: str) -> int:
        return int(float(_number(text, float, "a number")) * self.factor)

    def check(self, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{value!r} is not a whole count")
        if value <= 0:
            raise ValueError(f"{self.show(value)} {self.unit}: give more than 0")

    def show(self, value: Any) -> str:
        return f"{value / self.factor:g}"


@dataclass(frozen=True)
class Flag(Kind):
    def accepts(self) -> str:
        return "1, true, yes, on / 0, false, no, off"

    ON = ("1", "true", "yes", "on")
    OFF = ("0", "false", "no", "off")

    def parse(self, text: str) -> bool:
        word = text.strip().lower()
        if word in self.ON:
            return True
        if word in self.OFF:
            return False
        raise ValueError(f"{text.strip()!r} is neither on ({', '.join(self.ON)}) nor off")

    def check(self, value: Any) -> None:
        if not isinstance(value, bool):
            raise ValueError(f"{value!r} is not on or off")

    def show(self, value: Any) -> str:
        return "on" if value else "off"


@dataclass(frozen=True)
class Url(Kind):
    def accepts(self) -> str:
        return "an absolute http(s) url, no query or fragment"

    def parse(self, text: str) -> str:
        return text.strip().rstrip("/")

    def check(self, value: Any) -> None:
        if not isinstance(value, str):
            raise ValueError(f"{value!r} is not text")
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{value!r} is not an absolute http(s) url")
        if parts.query or parts.fragment or value != value.strip() or " " in value:
            raise ValueError(f"{value!r} has a query, a fragment or a space")


@dataclass(frozen=True)
class Tokens(Kind):
    """Bearer tokens, fail closed: every token must be there and sendable, or the start stops."""

    def accepts(self) -> str:
        return "comma-separated bearer tokens (RFC 6750 characters)"

    secret = True

    def parse(self, text: str) -> frozenset[str]:
        pieces = [piece.strip() for piece in text.split(",")]
        for number, piece in enumerate(pieces, 1):
            problem = token_problem(piece)
            if problem:
                where = f"token {number} of {len(pieces)}" if len(pieces) > 1 else "the token"
                raise ValueError(
                    f"{where} {problem}; every comma-separated token must be there "
                    "(unset the variable to run without authentication)"
                )
        return frozenset(pieces)

    def accept(self, value: Any) -> frozenset[str]:
        if isinstance(value, str):
            return self.parse(value)
        if isinstance(value, Iterable) and not isinstance(value, (bytes, Mapping)):
            tokens = list(value)
            if not tokens:
                raise ValueError("no token given (leave the key out to run without tokens)")
            self.check(frozenset(tokens))
            return frozenset(tokens)
        raise ValueError(f"give text or a collection of tokens, not a {type(value).__name__}")

    def check(self, value: Any) -> None:
        if not isinstance(value, frozenset):
            raise ValueError("give a frozenset of tokens")
        for token in value:
            problem = token_problem(token)
            if problem:
                raise ValueError(f"one token {problem}")

    def show(self, value: Any) -> str:
        return "none (no authentication)" if not value else "(secret)"


@dataclass(frozen=True)
class Schemes(Kind):
    def accepts(self) -> str:
        return "`score-code=scheme-id`, comma-separated"

    def parse(self, text: str) -> tuple[tuple[str, str], ...]:
        pairs = []
        for part in text.split(","):
            if part.strip():
                code, equals, scheme = part.partition("=")
                if not equals or not code.strip() or not scheme.strip():
                    raise ValueError(f"{part.strip()!r}: write score-code=scheme-id")
                pairs.append((code.strip(), scheme.strip()))
        return tuple(pairs)

    def check(self, value: Any) -> None:
        codes = [code for code, _ in value]
        twice = sorted({code for code in codes if codes.count(code) > 1})
        if twice:
            raise ValueError(f"{', '.join(twice)} chosen twice")
        if value:
            registry.check_band_schemes(value)

    def show(self, value: Any) -> str:
        return ",".join(f"{code}={scheme}" for code, scheme in value) or "none (the defaults)"


@dataclass(frozen=True)
class Origins(Kind):
    """Web origins as browsers send them in `Origin`: scheme, host and port, nothing more."""

    def accepts(self) -> str:
        return "comma-separated origins (`https://host` or `https://host:port`), or `*` for any"

    DEFAULT_PORTS = (("https://", ":443"), ("http://", ":80"))

    def parse(self, text: str) -> tuple[str, ...]:
        origins = []
        for piece in text.split(","):
            origin = piece.strip().lower()
            for scheme, port in self.DEFAULT_PORTS:  # browsers leave a default port out
                if origin.startswith(scheme) and origin.endswith(port):
                    origin = origin.removesuffix(port)
            if origin:
                origins.append(origin)
        return tuple(origins)

    def check(self, value: Any) -> None:
        if not isinstance(value, tuple):
            raise ValueError("give a tuple of origins")
        if "*" in value and len(value) > 1:
            raise ValueError("`*` stands alone: any origin, or the ones listed")
        for origin in value:
            if origin == "*":
                continue
            if not isinstance(origin, str):
                raise ValueError(f"{origin!r} is not text")
            parts = urlsplit(origin)
            if (
                parts.scheme not in ("http", "https")
                or not parts.hostname
                or parts.path
                or parts.query
                or parts.fragment
                or parts.username is not None
                or origin != origin.lower()
                or origin.endswith(":")
            ):
                raise ValueError(
                    f"{origin!r} is not an origin: write scheme://host or scheme://host:port, "
                    "lower case, no path or slash at the end"
                )
            try:
                parts.port  # noqa: B018 - raises ValueError for a port that is no number
            except ValueError:
                raise ValueError(f"{origin!r} has a port that is no number") from None

    def show(self, value: Any) -> str:
        return ",".join(value) or "none (off)"


@dataclass(frozen=True)
class Folder(Kind):
    def accepts(self) -> str:
        return "a folder path (made absolute at the start)"

    def parse(self, text: str) -> Path:
        return Path(text.strip()).expanduser().absolute()

    def check(self, value: Any) -> None:
        if not isinstance(value, Path):
            raise ValueError(f"{value!r} is not a path")


@dataclass(frozen=True)
class Addresses(Kind):
    def accepts(self) -> str:
        return "`host:port`, `unix:PATH` or `fd://N`, comma-separated"

    def parse(self, text: str) -> tuple[str, ...]:
        return tuple(piece.strip() for piece in text.split(",") if piece.strip())

    def check(self, value: Any) -> None:
        if not value:
            raise ValueError("no address given")
        for address in value:
            if address.startswith(("unix:", "fd://")):
                continue
            host, colon, port = address.rpartition(":")
            if not colon or not host or not port.isdigit() or int(port) > 65535:
                raise ValueError(f"{address!r} is not host:port, unix:PATH or fd://N")

    def show(self, value: Any) -> str:
        return ",".join(value)


@dataclass(frozen=True)
class Text(Kind):
    choices: tuple[str, ...] = ()

    def accepts(self) -> str:
        return " / ".join(self.choices) if self.choices else "text"

    def parse(self, text: str) -> str:
        return text.strip().lower() if self.choices else text.strip()

    def check(self, value: Any) -> None:
        if not isinstance(value, str):
            raise ValueError(f"{value!r} is not text")
        if self.choices and value not in self.choices:
            raise ValueError(f"{value!r} is not one of {', '.join(self.choices)}")

    def show(self, value: Any) -> str:
        return value or "none"


# --- the table -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    variable: str
    part: Part
    field: str
    kind: Kind
    doc: str
    default_text: str = ""
    """The default in words, where it depends on the machine."""

    @property
    def default(self) -> Any:
        for item in fields(PART_TYPES[self.part]):
            if item.name == self.field:
                if item.default_factory is not MISSING:
                    return item.default_factory()
                return item.default
        raise LookupError(self.field)

    @property
    def shown_default(self) -> str:
        return self.default_text or self.kind.show(self.default)


MB = Scaled("MB", MIB)
OPTIONS: tuple[Option, ...] = (
    Option(
        "FMS_FHIR_CANONICAL_BASE",
        "core",
        "canonical_base",
        Url(),
        "base of canonical urls, identifier systems, issue codes and OperationDefinition urls",
    ),
    Option(
        "FMS_FHIR_STRICT",
        "core",
        "strict",
        Flag(),
        "validate every emitted resource with the R4B models (slower; a failure is a 500)",
    ),
    Option(
        "FMS_FHIR_MAX_INPUT_MB",
        "core",
        "max_input_bytes",
        MB,
        "largest answers document, regimen or contract (413 / exit 1 above)",
    ),
    Option(
        "FMS_FHIR_MAX_RESPONSE_MB",
        "core",
        "max_response_bytes",
        MB,
        "largest QuestionnaireResponse validated or extracted",
    ),
    Option(
        "FMS_FHIR_MAX_JSON_DEPTH",
        "core",
        "max_json_depth",
        Whole(1, 256),
        "deepest nesting of arrays and objects in any JSON input (400 / exit 1 deeper)",
    ),
    Option(
        "FMS_FHIR_MAX_UPLOAD_MB",
        "core",
        "max_upload_bytes",
        MB,
        "largest spreadsheet the service accepts",
    ),
    Option(
        "FMS_FHIR_MAX_SHEET_ROWS",
        "core",
        "max_sheet_rows",
        Whole(1),
        "most rows converted from one spreadsheet (413 / exit 1 above)",
    ),
    Option(
        "FMS_FHIR_API_TOKENS",
        "core",
        "api_tokens",
        Tokens(),
        "bearer tokens the service accepts; when set, every route except `/healthz` and "
        "`/metadata` needs one; set but blank refuses to start",
    ),
    Option(
        "FMS_FHIR_BAND_SCHEMES",
        "core",
        "band_schemes",
        Schemes(),
        "a published band scheme chosen for a score instead of its default, e.g. "
        "`fiqr-total=salaffi-2020` (see docs/instruments.md)",
    ),
    Option(
        "FMS_FHIR_BASELINE_MAX_DAYS",
        "core",
        "baseline_max_days",
        Whole(0, 3650, zero="never warn"),
        "the follow-up report warns when a score's baseline value is older than this many days "
        "before the baseline day (the LDN start): the default 30 covers the instruments' recall "
        "periods (7 days to 2 weeks) and the time to start the drug; a project choice, not a "
        "published rule (docs/report.md)",
    ),
    Option(
        "FMS_FHIR_MAX_CONCURRENT",
        "service",
        "max_concurrent",
        Whole(0, zero="no limit"),
        "requests one process serves at once before answering 503 (for threaded servers)",
    ),
    Option(
        "FMS_FHIR_RETRY_AFTER",
        "service",
        "retry_after",
        Whole(0),
        "seconds in the `Retry-After` of a 503",
    ),
    Option(
        "FMS_FHIR_MAX_BUNDLE_ROWS",
        "service",
        "max_bundle_rows",
        Whole(1),
        "most sheet rows answered as JSON Bundles (held in memory); NDJSON answers are bounded "
        "by `FMS_FHIR_MAX_SHEET_ROWS` only",
    ),
    Option(
        "FMS_FHIR_REPORT_MAX_MB",
        "service",
        "report_max_bytes",
        MB,
        "largest `$report` body (413 above; also bounded by `FMS_FHIR_MAX_INPUT_MB`): about "
        "900 visits with every instrument",
    ),
    Option(
        "FMS_FHIR_REPORT_MAX_RESOURCES",
        "service",
        "report_max_resources",
        Whole(1),
        "most resources (score Observations, MedicationStatements) in one `$report` body (413 "
        "above): about 700 visits with every instrument, a report of a few seconds",
    ),
    Option(
        "FMS_FHIR_CORS_ORIGINS",
        "service",
        "cors_origins",
        Origins(),
        "web pages (origins) allowed to call the FHIR routes from a browser (CORS); `*` for any; "
        "never the page's routes, and never with cookies (see docs/service.md)",
    ),
    Option(
        "FMS_FHIR_PAGE_DIR",
        "page",
        "folder",
        Folder(),
        "where the page keeps results; created 0700 at the start, which stops when it is a "
        "link, a file or another user's; give every worker the same folder",
        default_text="`<temp dir>/fms-fhir-page-<uid>`",
    ),
    Option(
        "FMS_FHIR_PAGE_TTL_MINUTES",
        "page",
        "ttl",
        Scaled("minutes", 60),
        "how long the page keeps a result",
    ),
    Option(
        "FMS_FHIR_PAGE_MAX_MB",
        "page",
        "max_bytes",
        MB,
        "all results the page keeps together (the oldest go first)",
    ),
    Option(
        "FMS_FHIR_PAGE_MAX_ROWS",
        "page",
        "max_rows",
        Whole(1),
        "most rows one upload on the page converts (also bounded by `FMS_FHIR_MAX_SHEET_ROWS`)",
    ),
    Option(
        "FMS_FHIR_BIND",
        "gunicorn",
        "bind",
        Addresses(),
        "address(es) to listen on (`0.0.0.0:8080` in a container)",
    ),
    Option(
        "FMS_FHIR_WORKERS",
        "gunicorn",
        "workers",
        Whole(1),
        "sync worker processes",
        default_text="CPU count + 1",
    ),
    Option(
        "FMS_FHIR_TIMEOUT",
        "gunicorn",
        "timeout",
        Whole(1),
        "seconds a request may run before its worker is killed (raise it for very large sheets)",
    ),
    Option(
        "FMS_FHIR_GRACEFUL_TIMEOUT",
        "gunicorn",
        "graceful_timeout",
        Whole(0),
        "after SIGTERM, seconds running requests get to finish (new ones get 503)",
    ),
    Option(
        "FMS_FHIR_MAX_REQUESTS",
        "gunicorn",
        "max_requests",
        Whole(0, zero="never"),
        "restart a worker after this many requests",
    ),
    Option(
        "FMS_FHIR_CONTROL_SOCKET",
        "gunicorn",
        "control_socket",
        Text(),
        "path of gunicorn's control socket (`gunicornc`); off unless given, since the default "
        "path is shared by every gunicorn of the user",
    ),
    Option(
        "FMS_FHIR_LOG_LEVEL",
        "gunicorn",
        "log_level",
        Text(("debug", "info", "warning", "error", "critical")),
        "gunicorn's own log level",
    ),
    Option(
        "FMS_FHIR_GC_FREEZE",
        "gunicorn",
        "gc_freeze",
        Flag(),
        "`gc.freeze()` after the app is built in each worker",
    ),
)
BY_NAME: dict[str, Option] = {option.variable: option for option in OPTIONS}
LEGACY_PAGE_KEYS: dict[str, str] = {
    option.variable.removeprefix(PREFIX): option.variable
    for option in OPTIONS
    if option.part == "page"
}
"""`PAGE_DIR`, ...: the Flask config keys the page once read; `create_app(mapping)` still takes
them, as the same rows of the table."""


# --- building ------------------------------------------------------------------------------------


def nearest(name: str, cutoff: float = 0.0) -> str | None:
    """The known variable most like `name`, at least `cutoff` alike."""
    found = difflib.get_close_matches(name, BY_NAME, n=1, cutoff=cutoff)
    return found[0] if found else None


def _read(option: Option, value: Any) -> Any:
    """The value of one variable; `None` means 'the default'. A blank secret never does."""
    blank = value is None or (isinstance(value, str) and not value.strip())
    if blank:
        if option.kind.secret:
            raise ConfigError(
                option.variable,
                "is set but empty; a configured secret must hold a value "
                "(unset the variable to run without authentication)",
            )
        return None
    try:
        parsed = option.kind.accept(value)
        option.kind.check(parsed)
    except ValueError as error:
        raise ConfigError(option.variable, str(error)) from None
    return parsed


def _fields(given: Mapping[str, Any], parts: Iterable[Part]) -> dict[Part, dict[str, Any]]:
    """Part -> {field: value} of the variables present in `given`."""
    wanted = set(parts)
    values: dict[Part, dict[str, Any]] = {part: {} for part in wanted}
    for option in OPTIONS:
        if option.part in wanted and option.variable in given:
            value = _read(option, given[option.variable])
            if value is not None:
                values[option.part][option.field] = value
    return values


def check(config: Config) -> Config:
    """Every option's bounds on the built value, however it was made (a Settings built in code
    is checked like a variable); the band schemes against the registry."""
    for option in OPTIONS:
        if option.part in CONFIG_FIELDS:
            value = getattr(getattr(config, CONFIG_FIELDS[option.part]), option.field)
            try:
                option.kind.check(value)
            except ValueError as error:
                raise ConfigError(option.variable, str(error)) from None
    return config


def _build(values: dict[Part, dict[str, Any]], settings: Settings | None = None) -> Config:
    core = settings or Settings()
    if values["core"]:
        core = replace(core, **values["core"])
    return check(Config(core, WebOptions(**values["service"]), PageOptions(**values["page"])))


def from_environ(environ: Mapping[str, str], settings: Settings | None = None) -> Config:
    """The configuration from the environment; with `settings`, the core's part is that."""
    values = _fields(environ, APP_PARTS if settings is None else ("service", "page"))
    return _build({"core": {}, **values}, settings)


def from_mapping(mapping: Mapping[str, Any]) -> tuple[Config, dict[str, Any]]:
    """`create_app(mapping)`: `SETTINGS` (a Settings) and `FMS_FHIR_*` keys (any part, on top of
    `SETTINGS`); an unknown `FMS_FHIR_*` key is refused, naming the nearest known one. The
    environment is not read. Other upper-case keys are Flask config (returned)."""
    given: dict[str, Any] = {}
    flask_config: dict[str, Any] = {}
    for key, value in mapping.items():
        if not isinstance(key, str):
            continue
        if key.startswith(PREFIX):
            option = BY_NAME.get(key)
            if option is None:
                raise ConfigError(key, f"is not an option; did you mean {nearest(key)}?")
            if option.part not in APP_PARTS:
                raise ConfigError(
                    key, "is gunicorn's, read from the environment by gunicorn.conf.py"
                )
            given[key] = value
        elif key in LEGACY_PAGE_KEYS:
            if LEGACY_PAGE_KEYS[key] in mapping:
                raise ConfigError(LEGACY_PAGE_KEYS[key], f"given twice (also as {key})")
            given[LEGACY_PAGE_KEYS[key]] = value
            flask_config[key] = value
        elif key != "SETTINGS" and key.isupper():
            flask_config[key] = value
    settings = mapping.get("SETTINGS")
    if settings is not None and not isinstance(settings, Settings):
        raise ConfigError("SETTINGS", f"is a {type(settings).__name__}, not a Settings")
    return _build(_fields(given, APP_PARTS), settings), flask_config


def for_app(
    config: Config | Settings | Mapping[str, Any] | None, environ: Mapping[str, str]
) -> tuple[Config, dict[str, Any]]:
    """What `create_app(config)` was given -> the configuration and the Flask config.

    None: the environment. A Config: it. A Settings: the core's part; the service's and the
    page's options from the environment. A mapping: see `from_mapping`."""
    if config is None:
        return from_environ(environ), {}
    if isinstance(config, Config):
        return check(config), {}
    if isinstance(config, Settings):
        return from_environ(environ, config), {}
    return from_mapping(config)


def server_options(environ: Mapping[str, str]) -> ServerOptions:
    """gunicorn's part, for gunicorn.conf.py."""
    return ServerOptions(**_fields(environ, ("gunicorn",))["gunicorn"])


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """Warnings for FMS_FHIR_* variables that look like a misspelt option (a typo in the tokens'
    name would otherwise leave the service open without a word)."""
    warnings = []
    for name in sorted(environ):
        if name.startswith(PREFIX) and name not in BY_NAME:
            like = nearest(name, cutoff=0.8)
            if like:
                warnings.append(f"{name} is not an option; did you mean {like}?")
    return warnings


# --- the documentation ---------------------------------------------------------------------------


def markdown_table() -> str:
    """The table of docs/configuration.md (a test keeps the two equal)."""
    lines = [
        "| variable | default | accepts | used by | meaning |",
        "|---|---|---|---|---|",
    ]
    for option in OPTIONS:
        lines.append(
            f"| `{option.variable}` | {option.shown_default} | {option.kind.accepts()} "
            f"| {option.part} | {option.doc} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if argv != ["--markdown"]:
        print("usage: python -m adapter.config --markdown", file=sys.stderr)
        return 2
    sys.stdout.write(markdown_table())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
