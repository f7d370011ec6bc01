"""NDJSON bodies on POST /v1/integrations/{id}/messages (how the SDK's send_stream sends
many messages per request): refusals that happen before anything reaches the log. The
accepted path (one message per line, in the log, processed) runs on the real broker in
tests/sdk/test_contract.py."""

from __future__ import annotations

from tests.api.conftest import ACME, assert_error

INT = "int_" + "a" * 24
NDJSON = {**ACME, "Content-Type": "application/x-ndjson"}


def test_every_bad_line_is_named_and_nothing_is_accepted(client, seed):
    seed.integration("acme", INT, "flow")
    body = b'{"n": 1}\n\nnot json\n{"n": 3}\n{"n": NaN}\n'
    error = assert_error(client.post(f"/v1/integrations/{INT}/messages", headers=NDJSON,
                                     content=body), 422, "VALIDATION_FAILED")
    assert [d["field"] for d in error["details"]] == ["/line/3", "/line/5"]
    assert "not json" not in str(error)  # messages never echo the submitted values


def test_a_body_without_any_line_is_malformed(client, seed):
    seed.integration("acme", INT, "flow")
    assert_error(client.post(f"/v1/integrations/{INT}/messages", headers=NDJSON,
                             content=b"\n \n"), 400, "MALFORMED_JSON")
