"""Log lines: JSON under journald (JOURNAL_STREAM names stderr), plain text otherwise; the bound
job, cluster and commit shown in both; never a secret."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from loguru import logger

from flink_gitops.cli import logs

TOKEN = "s3cr3t-bearer-token-value"


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "repo").mkdir()
    token = tmp_path / "token"
    token.write_text(TOKEN)
    config = tmp_path / "config.yaml"
    config.write_text(
        f"state_dir: {tmp_path / 'state'}\n"
        "clusters:\n"
        "  default:\n"
        "    url: http://127.0.0.1:9\n"  # nothing listens: the cycle logs retries and a summary
        "    max_attempts: 1\n"
        f"    auth: {{kind: bearer, token: {{file: {token}}}, allow_plain_http: true}}\n"
    )
    cli = [sys.executable, "-m", "flink_gitops", "--config", str(config)]
    subprocess.run([*cli, "keys", "generate"], check=True, capture_output=True)
    return tmp_path, config


def run_sync(tmp: Path, config: Path, *, journald: bool, **more: str) -> str:
    err = tmp / "stderr.log"
    with err.open("wb") as handle:
        st = os.fstat(handle.fileno())
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JOURNAL_STREAM", "FLINK_GITOPS"))}
        if journald:
            env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
        env.update(more)
        cmd = [sys.executable, "-m", "flink_gitops", "--config", str(config)]
        subprocess.run(
            [*cmd, "-v", "sync", "--once", "--repo", str(tmp / "repo")],
            stdout=subprocess.DEVNULL,
            stderr=handle,
            env=env,
            timeout=60,
            check=False,
        )
    return err.read_text()


def test_under_journald_every_line_is_a_json_object(world: tuple[Path, Path]) -> None:
    out = run_sync(*world, journald=True)
    lines = out.splitlines()
    assert any("cycle rev=" in line for line in lines), out
    assert len(lines) > 1, "the debug lines of the failed Flink calls too"
    for line in lines:
        record = json.loads(line)
        assert {"ts", "level", "logger", "message"} <= set(record), line
    assert TOKEN not in out


def test_on_a_terminal_or_a_file_lines_are_plain_text(world: tuple[Path, Path]) -> None:
    out = run_sync(*world, journald=False)
    assert "cycle rev=" in out
    assert not any(line.startswith("{") for line in out.splitlines()), out
    assert TOKEN not in out


def test_a_journal_stream_of_another_file_is_not_journald(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("x")
    other = os.stat(tmp_path / "token")
    os.environ["JOURNAL_STREAM"] = f"{other.st_dev}:{other.st_ino}"
    try:
        with (tmp_path / "x").open("w") as stream:
            assert logs.under_journald(stream) is False
            own = os.fstat(stream.fileno())
            os.environ["JOURNAL_STREAM"] = f"{own.st_dev}:{own.st_ino}"
            assert logs.under_journald(stream) is True
            os.environ["JOURNAL_STREAM"] = "garbage"
            assert logs.under_journald(stream) is False
    finally:
        del os.environ["JOURNAL_STREAM"]


def test_log_format_json_is_forced_by_the_environment(world: tuple[Path, Path]) -> None:
    out = run_sync(*world, journald=False, FLINK_GITOPS_LOG_FORMAT="json")
    assert all(json.loads(line) for line in out.splitlines())


def test_bound_context_shows_in_both_formats() -> None:
    records: list[str] = []
    texts: list[str] = []
    sink = logger.add(lambda m: records.append(logs.json_line(m.record)), level="INFO")
    text = logger.add(texts.append, level="INFO", format=logs._text_format, colorize=False)
    try:
        with logger.contextualize(commit="1a2b3c4d5e6f7a8b"), logger.contextualize(job="orders", cluster="x"):
            logger.info("stopping {} with {{braces}} <b>", "job")
        logger.info("unbound")
    finally:
        logger.remove(sink)
        logger.remove(text)
    first = json.loads(records[0])
    assert first["job"] == "orders"
    assert first["cluster"] == "x"
    assert first["commit"] == "1a2b3c4d5e6f7a8b"
    assert first["message"] == "stopping job with {braces} <b>"
    assert "job" not in json.loads(records[1])
    assert "[orders@x 1a2b3c4d] stopping job with {braces} <b>" in texts[0]
    assert "[" not in texts[1].split(" - ", 1)[1]


@pytest.fixture
def json_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    """The CLI's JSON logging, configured by the test (onto capsys's stderr of the call phase)."""
    try:
        yield capsys
    finally:
        logger.remove()
        logger.add(sys.stderr)
        root = logging.getLogger()
        for handler in [h for h in root.handlers if type(h).__name__ == "_ToLoguru"]:
            root.removeHandler(handler)


def test_the_standard_librarys_records_are_json_lines_too(json_logs: pytest.CaptureFixture[str]) -> None:
    """uvicorn's "Invalid HTTP request received." came out as a bare text line under journald."""
    from flink_gitops.secrets import Secret
    from flink_gitops.service.api import ApiServer, TokenBook, create_app, hash_token
    from flink_gitops.settings import HttpConfig
    from tests.service.test_api import OPERATOR, FakeControl, FakeReadModel

    logs.configure("INFO", "json")
    book = TokenBook.parse(f"operator:{hash_token(OPERATOR)}", "t")
    app = create_app(FakeReadModel(), print, tokens=book, webhook_secret=Secret(b"s"), control=FakeControl())
    server = ApiServer(app, HttpConfig(port=0))
    server.start()
    garbage = b"GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + OPERATOR.encode() + b"\r\n\x01\r\n\r\n"
    try:
        with socket.create_connection((server.host, server.port), timeout=10) as s:
            s.sendall(garbage)
            assert s.recv(100).startswith(b"HTTP/1.1 400")  # logged before it answered
    finally:
        server.stop()
    logger.warning("a proxy said: Authorization: Bearer {} refused", OPERATOR)
    logging.getLogger("some.library").warning("two\nlines and \x1b[31m an escape \u2028")
    err = json_logs.readouterr().err
    lines = [json.loads(line) for line in err.split("\n")[:-1]]  # every line one JSON object
    uvicorn = [(d["level"], d["message"]) for d in lines if d["logger"] == "uvicorn.error"]
    assert uvicorn == [("WARNING", "Invalid HTTP request received.")], err
    assert lines[-1]["message"] == "two\nlines and \x1b[31m an escape \u2028"
    assert lines[-2]["message"] == "a proxy said: Authorization: Bearer [redacted] refused"
    assert OPERATOR not in err


@pytest.mark.parametrize("value", ["²:1", "1:²", "1:2:3", ":", "abc", "-1:-1", "1 :2", ""])
def test_a_garbage_journal_stream_is_not_journald(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """'²' is str.isdigit() but no int: it crashed every command before it started."""
    monkeypatch.setenv("JOURNAL_STREAM", value)
    with (tmp_path / "err").open("w") as stream:
        assert logs.under_journald(stream) is False


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("Authorization: Bearer s3cr3t-bearer-token-value", "Authorization: Bearer [redacted]"),
        ("basic dXNlcjpwYXNz=", "basic [redacted]"),
        ("BEARER abc.def-ghi_jkl, then", "BEARER [redacted], then"),
        ("a bearer token is required", "a bearer token is required"),
        ("Basic Authentication is off", "Basic Authentication is off"),
        ("no credential here", "no credential here"),
    ],
)
def test_what_looks_like_a_credential_is_redacted_in_every_format(
    json_logs: pytest.CaptureFixture[str], text: str, shown: str
) -> None:
    logs.configure("INFO", "text")
    logger.info("{}", text)
    logs.configure("INFO", "json")
    logger.info("{}", text)
    text_line, json_line = json_logs.readouterr().err.splitlines()
    assert text_line.endswith(f" - {shown}")
    assert json.loads(json_line)["message"] == shown


def test_a_traceback_quoting_a_credential_is_redacted_in_every_format(
    json_logs: pytest.CaptureFixture[str],
) -> None:
    leaked = "s3cr3t-TOKEN-in-an-exception-0123"

    def fail() -> None:
        raise RuntimeError(f"upstream said: Authorization: Bearer {leaked}")

    for fmt in ("text", "json"):
        logs.configure("INFO", fmt)
        try:
            fail()
        except RuntimeError:
            logger.exception("cycle failed with an unexpected error")
    out = json_logs.readouterr().err
    assert leaked not in out
    assert out.count("Authorization: Bearer [redacted]") == 2, out
    (record,) = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert "RuntimeError" in record["exception"]
    assert "_exc" not in record
