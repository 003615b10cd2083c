"""Schemathesis against the service's own OpenAPI schema: generated requests to every operation, with a
valid user token, a bounded number of examples each (``GENFORGE_SCHEMA_EXAMPLES``, default 8), must
never get a server error (5xx) back."""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from serving import Service

EXAMPLES = int(os.environ.get("GENFORGE_SCHEMA_EXAMPLES", "8"))
STREAMING = ("/v1/jobs/{job_id}/events",)  # a real job's stream lasts as long as the job


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    svc = Service(tmp_path_factory.mktemp("serve-schema") / "home")
    yield svc
    svc.stop()


@pytest.fixture(scope="module")
def token(service):
    return service.token("fuzz", max_jobs=1000, rpm=100_000, max_upload_mb=1)


def test_no_request_gets_a_server_error(service, token):
    from hypothesis import given

    from genforge.app.serve.api import create_app

    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(service.settings, recovery=False))
    failures, tried = [], 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)
        def check(case):
            if case.path in STREAMING and case.method.upper() == "GET":
                case.path_parameters = {"job_id": "no-such-job"}  # 404 at once, not a stream
            response = case.call(headers={"Authorization": f"Bearer {token}"})
            case.validate_response(response, checks=[not_a_server_error])

        tried += 1
        try:
            check()
        except Exception as err:  # noqa: BLE001 - collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {str(err).strip().splitlines()[0][:300]}")
    assert tried >= 20
    assert not failures, "\n".join(failures)
