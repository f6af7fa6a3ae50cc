"""schemathesis against the published OpenAPI of a real uvicorn server on loopback: whatever it
generates from the schema (as an operator, so every route is reached), the API never answers
with a server error, and its responses match the schema it publishes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from flink_gitops.secrets import Secret
from flink_gitops.service.api import ApiServer, TokenBook, create_app, hash_token
from flink_gitops.settings import HttpConfig
from tests.fixtures import secretscan
from tests.service.test_api import FakeControl, FakeReadModel

TOKEN = "schemathesis-operator-token"


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    app = create_app(
        FakeReadModel(),
        lambda _why: None,
        tokens=TokenBook.parse(f"operator:{hash_token(TOKEN)}", "t"),
        webhook_secret=Secret(b"s"),
        max_body_bytes=64 * 1024,
        control=FakeControl(),
    )
    srv = ApiServer(app, HttpConfig(port=0))
    srv.start()
    yield f"http://{srv.host}:{srv.port}"
    srv.stop()


def test_no_server_error_and_responses_match_the_schema(server: str) -> None:
    """Every operation of the schema, each with its own hypothesis run (schemathesis' strategies)."""
    schema = schemathesis.openapi.from_url(f"{server}/openapi.json")
    results = list(schema.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results) >= 15, "every operation of the schema is valid"
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case[Any]) -> None:
            response = case.call_and_validate(
                headers={"Authorization": f"Bearer {TOKEN}"},
                checks=[not_a_server_error, status_code_conformance, response_schema_conformance],
            )
            secretscan.check(f"HTTP {case.method} {case.formatted_path}", response.text)

        check()
