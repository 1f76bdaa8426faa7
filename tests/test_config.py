"""One configuration, built once from one table: every option read from the environment and
from a create_app mapping, every bad value stopping the start by name, the page's folder honoured,
bearer tokens failing closed, and docs/configuration.md equal to the table."""

from __future__ import annotations

import ast
import io
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from adapter import config
from adapter.cli import main
from adapter.config import (
    BY_NAME,
    OPTIONS,
    Config,
    ConfigError,
    from_environ,
    from_mapping,
    markdown_table,
    server_options,
)
from adapter.settings import MIB, Settings
from adapter.web import create_app
from adapter.web.examples import CSV
from adapter.web.state import state

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "configuration.md"
TOKENS = "FMS_FHIR_API_TOKENS"


def samples(folder: Path) -> dict[str, tuple[str, Any]]:
    """A good value of every option: its text and the value it becomes."""
    return {
        "FMS_FHIR_CANONICAL_BASE": ("https://example.org/fhir/", "https://example.org/fhir"),
        "FMS_FHIR_STRICT": ("Yes", True),
        "FMS_FHIR_MAX_INPUT_MB": ("1.5", int(1.5 * MIB)),
        "FMS_FHIR_MAX_RESPONSE_MB": ("2", 2 * MIB),
        "FMS_FHIR_MAX_JSON_DEPTH": (" 32 ", 32),
        "FMS_FHIR_MAX_UPLOAD_MB": ("3", 3 * MIB),
        "FMS_FHIR_MAX_SHEET_ROWS": ("77", 77),
        "FMS_FHIR_API_TOKENS": ("tok-a, tok-b==", frozenset({"tok-a", "tok-b=="})),
        "FMS_FHIR_BAND_SCHEMES": ("fiqr-total=salaffi-2020", (("fiqr-total", "salaffi-2020"),)),
        "FMS_FHIR_BASELINE_MAX_DAYS": ("90", 90),
        "FMS_FHIR_MAX_CONCURRENT": ("4", 4),
        "FMS_FHIR_RETRY_AFTER": ("0", 0),
        "FMS_FHIR_MAX_BUNDLE_ROWS": ("7", 7),
        "FMS_FHIR_PAGE_DIR": (str(folder), folder),
        "FMS_FHIR_PAGE_TTL_MINUTES": ("5", 300),
        "FMS_FHIR_PAGE_MAX_MB": ("0.5", MIB // 2),
        "FMS_FHIR_PAGE_MAX_ROWS": ("100", 100),
        "FMS_FHIR_REPORT_MAX_MB": ("2", 2 * MIB),
        "FMS_FHIR_REPORT_MAX_RESOURCES": ("500", 500),
        "FMS_FHIR_CORS_ORIGINS": (
            "https://App.example:443, http://localhost:3000",
            ("https://app.example", "http://localhost:3000"),
        ),
        "FMS_FHIR_BIND": ("127.0.0.1:9000, unix:/tmp/s", ("127.0.0.1:9000", "unix:/tmp/s")),
        "FMS_FHIR_WORKERS": ("3", 3),
        "FMS_FHIR_TIMEOUT": ("60", 60),
        "FMS_FHIR_GRACEFUL_TIMEOUT": ("0", 0),
        "FMS_FHIR_MAX_REQUESTS": ("1000", 1000),
        "FMS_FHIR_CONTROL_SOCKET": ("/tmp/fms.ctl", "/tmp/fms.ctl"),
        "FMS_FHIR_LOG_LEVEL": ("WARNING", "warning"),
        "FMS_FHIR_GC_FREEZE": ("off", False),
    }


BAD: list[tuple[str, str]] = [
    ("FMS_FHIR_CANONICAL_BASE", "example.org/fhir"),
    ("FMS_FHIR_CANONICAL_BASE", "ftp://example.org/fhir"),
    ("FMS_FHIR_CANONICAL_BASE", "https://example.org/fhir?x=1"),
    ("FMS_FHIR_STRICT", "ture"),
    ("FMS_FHIR_MAX_INPUT_MB", "lots"),
    ("FMS_FHIR_MAX_INPUT_MB", "0"),
    ("FMS_FHIR_MAX_RESPONSE_MB", "-1"),
    ("FMS_FHIR_MAX_RESPONSE_MB", "nan"),
    ("FMS_FHIR_MAX_JSON_DEPTH", "0"),
    ("FMS_FHIR_MAX_JSON_DEPTH", "100000"),
    ("FMS_FHIR_MAX_JSON_DEPTH", "6.5"),
    ("FMS_FHIR_MAX_UPLOAD_MB", "inf"),
    ("FMS_FHIR_MAX_SHEET_ROWS", "0"),
    ("FMS_FHIR_MAX_SHEET_ROWS", "1e6"),
    ("FMS_FHIR_API_TOKENS", "tok en"),
    ("FMS_FHIR_BAND_SCHEMES", "fiqr-total"),
    ("FMS_FHIR_BASELINE_MAX_DAYS", "-1"),
    ("FMS_FHIR_BASELINE_MAX_DAYS", "3651"),
    ("FMS_FHIR_BAND_SCHEMES", "fiqr-total=nobody-1999"),
    ("FMS_FHIR_BAND_SCHEMES", "no-such-score=salaffi-2020"),
    ("FMS_FHIR_BAND_SCHEMES", "fiqr-total=salaffi-2020,fiqr-total=bennett-2009"),
    ("FMS_FHIR_MAX_CONCURRENT", "-1"),
    ("FMS_FHIR_RETRY_AFTER", "soon"),
    ("FMS_FHIR_MAX_BUNDLE_ROWS", "0"),
    ("FMS_FHIR_PAGE_TTL_MINUTES", "0"),
    ("FMS_FHIR_PAGE_TTL_MINUTES", "an hour"),
    ("FMS_FHIR_PAGE_MAX_MB", "-5"),
    ("FMS_FHIR_PAGE_MAX_ROWS", "0"),
    ("FMS_FHIR_REPORT_MAX_MB", "0"),
    ("FMS_FHIR_REPORT_MAX_RESOURCES", "0"),
    ("FMS_FHIR_CORS_ORIGINS", "https://app.example/"),
    ("FMS_FHIR_CORS_ORIGINS", "*, https://app.example"),
    ("FMS_FHIR_CORS_ORIGINS", "null"),
]
BAD_SERVER: list[tuple[str, str]] = [
    ("FMS_FHIR_BIND", ","),
    ("FMS_FHIR_BIND", "localhost"),
    ("FMS_FHIR_BIND", "127.0.0.1:99999"),
    ("FMS_FHIR_WORKERS", "0"),
    ("FMS_FHIR_TIMEOUT", "0"),
    ("FMS_FHIR_GRACEFUL_TIMEOUT", "-3"),
    ("FMS_FHIR_MAX_REQUESTS", "many"),
    ("FMS_FHIR_LOG_LEVEL", "loud"),
    ("FMS_FHIR_GC_FREEZE", "maybe"),
]
EMPTY_TOKENS = ["", " ", "\t", ",", ",,", " , ", ", ,", "tok-a,,tok-b", "tok-a,", ",tok-a"]


def field_of(built: Config, variable: str) -> Any:
    option = BY_NAME[variable]
    return getattr(getattr(built, config.CONFIG_FIELDS[option.part]), option.field)


def app_variables() -> list[str]:
    return [o.variable for o in OPTIONS if o.part in config.APP_PARTS]


def upload(client, **kw: Any):
    form = {"file": (io.BytesIO(CSV.encode()), "visits.csv"), "format": "transaction"}
    return client.post("/", data=form, content_type="multipart/form-data", **kw)


# --- every option, from the environment and from a mapping ---------------------------------------


def test_every_option_has_a_sample_and_a_bad_value(tmp_path):
    assert set(samples(tmp_path)) == set(BY_NAME)
    bad = {variable for variable, _ in BAD + BAD_SERVER}
    assert bad | {"FMS_FHIR_PAGE_DIR", "FMS_FHIR_CONTROL_SOCKET"} == set(BY_NAME)


@pytest.mark.parametrize("variable", app_variables())
def test_each_option_from_the_environment(variable, tmp_path, monkeypatch):
    text, expected = samples(tmp_path / "page")[variable]
    monkeypatch.setenv(variable, text)
    assert field_of(state(create_app()).config, variable) == expected
    assert field_of(from_environ({variable: text}), variable) == expected


@pytest.mark.parametrize("variable", app_variables())
def test_each_option_from_a_create_app_mapping(variable, tmp_path, monkeypatch):
    text, expected = samples(tmp_path / "page")[variable]
    monkeypatch.setenv(variable, "rubbish that the mapping keeps out")
    built = state(create_app({variable: text, "TESTING": True})).config
    assert field_of(built, variable) == expected
    for other in app_variables():
        if other != variable:
            assert field_of(built, other) == BY_NAME[other].default, other


@pytest.mark.parametrize("variable", [o.variable for o in OPTIONS if o.part == "gunicorn"])
def test_each_gunicorn_option(variable, tmp_path):
    text, expected = samples(tmp_path)[variable]
    assert getattr(server_options({variable: text}), BY_NAME[variable].field) == expected


def test_defaults_when_unset_or_blank(tmp_path):
    built = from_environ({})
    assert built == Config()
    blank = {v: "  " for v in app_variables() if v != TOKENS}
    assert from_environ(blank) == built
    assert server_options({}).bind == ("127.0.0.1:8080",)


def test_mapping_values_may_be_typed(tmp_path):
    built, _ = from_mapping(
        {
            "FMS_FHIR_STRICT": True,
            "FMS_FHIR_MAX_SHEET_ROWS": 12,
            "FMS_FHIR_PAGE_DIR": tmp_path,
            TOKENS: ["one", "two"],
        }
    )
    assert built.settings.strict and built.settings.max_sheet_rows == 12
    assert built.page.folder == tmp_path
    assert built.settings.api_tokens == frozenset({"one", "two"})
    with pytest.raises(ConfigError, match="FMS_FHIR_MAX_SHEET_ROWS: give text"):
        from_mapping({"FMS_FHIR_MAX_SHEET_ROWS": [12]})


def test_mapping_keys_change_a_given_settings():
    base = Settings(max_sheet_rows=9)
    built, flask_config = from_mapping(
        {"SETTINGS": base, "FMS_FHIR_STRICT": "1", "TESTING": True, "lower": 1}
    )
    assert (built.settings.max_sheet_rows, built.settings.strict) == (9, True)
    assert flask_config == {"TESTING": True}
    with pytest.raises(ConfigError, match="^SETTINGS: is a dict"):
        from_mapping({"SETTINGS": {"strict": True}})


def test_a_settings_takes_the_other_parts_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("FMS_FHIR_MAX_BUNDLE_ROWS", "3")
    monkeypatch.setenv("FMS_FHIR_STRICT", "not read: the Settings given is the core")
    given = Settings(max_sheet_rows=9)
    app = create_app(given)
    assert state(app).settings is given
    assert state(app).options.max_bundle_rows == 3


# --- bad values stop the start, naming the variable ----------------------------------------------


@pytest.mark.parametrize(("variable", "text"), BAD)
def test_a_bad_value_stops_create_app(variable, text, monkeypatch):
    with pytest.raises(ConfigError) as raised:
        create_app({variable: text})
    assert raised.value.variable == variable and str(raised.value).startswith(f"{variable}: ")
    monkeypatch.setenv(variable, text)
    with pytest.raises(ConfigError, match=f"^{variable}: "):
        create_app()


@pytest.mark.parametrize(("variable", "text"), BAD_SERVER)
def test_a_bad_gunicorn_value_is_refused(variable, text):
    with pytest.raises(ConfigError, match=f"^{variable}: "):
        server_options({variable: text})


@pytest.mark.parametrize(("variable", "text"), BAD[::3] + [(TOKENS, " , ")])
def test_a_bad_value_stops_the_command_line(variable, text):
    """Exit 2 with one line naming the variable: no traceback, no output, whatever the command."""
    for command in (["questionnaire", "phq4"], ["package", "--out", "/nonexistent/never"]):
        result = CliRunner().invoke(main, command, env={variable: text})
        assert result.exit_code == 2, result.output
        assert f"configuration: {variable}: " in result.output
        assert "Traceback" not in result.output and '"resourceType"' not in result.output


def test_the_command_line_uses_the_value_it_built():
    env = {"FMS_FHIR_CANONICAL_BASE": "https://example.org/fhir"}
    result = CliRunner().invoke(main, ["questionnaire", "phq4"], env=env)
    assert result.exit_code == 0
    assert "https://example.org/fhir/Questionnaire/phq4" in result.output


def test_a_misspelt_variable_is_named(monkeypatch):
    with pytest.raises(ConfigError, match="did you mean FMS_FHIR_PAGE_DIR"):
        create_app({"FMS_FHIR_PAGE_DIRECTORY": "/tmp/x"})
    with pytest.raises(ConfigError, match=f"did you mean {TOKENS}"):
        create_app({"FMS_FHIR_API_TOKEN": "secret"})
    with pytest.raises(ConfigError, match="FMS_FHIR_WORKERS: is gunicorn's"):
        create_app({"FMS_FHIR_WORKERS": "2"})
    environ = {"FMS_FHIR_API_TOKEN": "x", "FMS_FHIR_REQUIRE_REAL_PARTS": "1"}
    assert config.unknown_variables(environ) == [
        f"FMS_FHIR_API_TOKEN is not an option; did you mean {TOKENS}?"
    ]
    result = CliRunner().invoke(main, ["questionnaire", "phq4"], env={"FMS_FHIR_API_TOKEN": "x"})
    assert result.exit_code == 0 and f"did you mean {TOKENS}?" in result.output


def test_a_settings_made_in_code_is_checked_like_a_variable():
    with pytest.raises(ConfigError, match="^FMS_FHIR_MAX_JSON_DEPTH: "):
        create_app(Settings(max_json_depth=0))
    with pytest.raises(ConfigError, match="^FMS_FHIR_BAND_SCHEMES: "):
        create_app({"SETTINGS": Settings(band_schemes=(("fiqr-total", "nobody"),))})
    with pytest.raises(ConfigError, match="^FMS_FHIR_CANONICAL_BASE: "):
        create_app(Config(Settings(canonical_base="not a url")))


# --- the page's folder ---------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["FMS_FHIR_PAGE_DIR", "PAGE_DIR"])
def test_create_app_keeps_page_uploads_in_the_folder_named(key, tmp_path, monkeypatch):
    folder = tmp_path / "patients"
    monkeypatch.setenv("FMS_FHIR_PAGE_DIR", str(tmp_path / "not-here"))
    client = create_app({key: str(folder), "TESTING": True}).test_client()
    assert folder.is_dir(), "created at the start, before any request"
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    response = upload(client)
    assert response.status_code == 200, response.data[:300]
    identifier = response.headers["Content-Location"].rsplit("/", 1)[1]
    assert (folder / identifier / "fhir.zip").is_file()
    assert not (tmp_path / "not-here").exists()


def test_nothing_reads_the_environment_after_the_start(tmp_path, monkeypatch):
    monkeypatch.setenv("FMS_FHIR_PAGE_DIR", str(tmp_path / "first"))
    client = create_app().test_client()
    monkeypatch.setenv("FMS_FHIR_PAGE_DIR", str(tmp_path / "later"))
    monkeypatch.setenv("FMS_FHIR_PAGE_MAX_ROWS", "rubbish")
    assert upload(client).status_code == 200
    assert len(list((tmp_path / "first").iterdir())) == 1
    assert not (tmp_path / "later").exists()


def test_an_unusable_page_folder_stops_the_start(tmp_path):
    plain = tmp_path / "file"
    plain.write_text("x")
    link = tmp_path / "link"
    link.symlink_to(tmp_path)
    for folder in (plain, link, plain / "below"):
        with pytest.raises(ConfigError, match="^FMS_FHIR_PAGE_DIR: the page's folder"):
            create_app({"FMS_FHIR_PAGE_DIR": str(folder)})
    with pytest.raises(ConfigError, match="FMS_FHIR_PAGE_DIR: given twice"):
        create_app({"FMS_FHIR_PAGE_DIR": str(tmp_path), "PAGE_DIR": str(tmp_path)})


# --- bearer tokens fail closed -------------------------------------------------------------------


@pytest.mark.parametrize("text", EMPTY_TOKENS)
def test_empty_tokens_refuse_to_start(text, monkeypatch):
    with pytest.raises(ConfigError, match=f"^{TOKENS}: "):
        create_app({TOKENS: text})
    monkeypatch.setenv(TOKENS, text)
    with pytest.raises(ConfigError, match=f"^{TOKENS}: "):
        create_app()
    result = CliRunner().invoke(main, ["questionnaire", "phq4"], env={TOKENS: text})
    assert result.exit_code == 2 and f"{TOKENS}: " in result.output


@pytest.mark.parametrize(
    "value", [None, [], (), frozenset(), [""], ["tok-a", " "], {"tok-a", "a,b"}, {"t": "x"}, 7]
)
def test_empty_tokens_in_a_mapping_refuse_to_start(value):
    with pytest.raises(ConfigError, match=f"^{TOKENS}: "):
        create_app({TOKENS: value})


@pytest.mark.parametrize("token", ["", " ", ",", "a b", "tok\n", "é"])
def test_a_settings_cannot_hold_an_empty_or_unsendable_token(token):
    with pytest.raises(ValueError, match="api_tokens: one token"):
        Settings(api_tokens=frozenset({token}))
    with pytest.raises(ValueError, match="api_tokens: one token"):
        Settings().with_(api_tokens=frozenset({"good", token}))
    with pytest.raises(ValueError, match="api_tokens: give a frozenset"):
        Settings(api_tokens={"good"})  # type: ignore[arg-type]  # the wrong type, on purpose


def test_a_secret_is_never_quoted():
    with pytest.raises(ConfigError) as raised:
        create_app({TOKENS: "hunter2,tok en"})
    assert "hunter2" not in str(raised.value) and "tok en" not in str(raised.value)
    assert "token 2 of 2" in str(raised.value)


@given(st.text(alphabet=" ,\t\n\r\x0b\x0c", max_size=12))
def test_separators_and_blanks_never_turn_authentication_off(text):
    with pytest.raises(ConfigError, match=f"^{TOKENS}: "):
        from_environ({TOKENS: text})
    with pytest.raises(ConfigError, match=f"^{TOKENS}: "):
        from_mapping({TOKENS: text})


@given(st.text(max_size=30))
def test_tokens_read_are_never_empty(text):
    """Whatever the text: it stops the start, or every token read is there and sendable."""
    try:
        tokens = from_environ({TOKENS: text}).settings.api_tokens
    except ConfigError:
        return
    assert tokens and all(re.fullmatch(r"[A-Za-z0-9._~+/-]+=*", t) for t in tokens)


def test_tokens_are_required_once_configured(tmp_path):
    client = create_app({TOKENS: " tok-a , tok-b ", "PAGE_DIR": str(tmp_path)}).test_client()
    assert client.get("/Questionnaire").status_code == 401
    good = {"Authorization": "Bearer tok-b"}
    assert client.get("/Questionnaire", headers=good).status_code == 200


@pytest.mark.slow  # gunicorn
def test_gunicorn_refuses_to_boot_with_a_bad_value():
    """gunicorn.conf.py checks the app's configuration before any worker starts."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FMS_FHIR_")}
    for variable, text in ((TOKENS, " , "), ("FMS_FHIR_WORKERS", "none")):
        process = subprocess.run(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                str(ROOT / "gunicorn.conf.py"),
                "--check-config",
            ],
            cwd=ROOT,
            env={**environment, variable: text, "FMS_FHIR_BIND": "127.0.0.1:0"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert process.returncode != 0
        assert f"fms-fhir: configuration: {variable}: " in process.stderr
        assert "Traceback" not in process.stderr


# --- one table, no circle ------------------------------------------------------------------------


def test_the_doc_is_the_table():
    text = DOC.read_text()
    begin = text.index("\n", text.index("<!-- BEGIN OPTIONS")) + 1
    end = text.index("<!-- END OPTIONS -->")
    assert text[begin:end] == markdown_table(), "run: python -m adapter.config --markdown"
    for option in OPTIONS:
        assert text.count(f"`{option.variable}`") >= 1


def test_the_markdown_command_prints_the_table(capsys):
    assert config.main(["--markdown"]) == 0
    assert capsys.readouterr().out == markdown_table()
    assert config.main([]) == 2


def test_settings_imports_nothing_of_the_project():
    """settings and registry no longer import each other: the band schemes are checked where the
    configuration is built."""
    tree = ast.parse((ROOT / "adapter" / "settings.py").read_text())
    imported = [
        node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
    ] + [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    ]
    assert not [name for name in imported if name.startswith(("adapter", "mappings"))]
