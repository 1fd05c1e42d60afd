"""Secrets never reach a log line."""

from __future__ import annotations

from streams.executors.masking import MASK, is_secret_name, mask_secrets, mask_url


def test_secret_names():
    for name in ("Authorization", "authorization", "Cookie", "X-Api-Key", "x_api_key",
                 "X-Auth-Token", "access_token", "client_secret", "DB_PASSWORD", "apiKey",
                 "my-api-key", "Proxy-Authorization", "Set-Cookie"):  # fmt: skip
        assert is_secret_name(name), name
    for name in ("Content-Type", "Accept", "Idempotency-Key", "user", "key", "tokyo"):
        assert not is_secret_name(name), name


def test_mask_secrets_is_recursive_and_leaves_the_input_alone():
    original = {
        "headers": {"Authorization": "Bearer abc", "Accept": "application/json"},
        "body": [{"password": "hunter2", "user": "ann"}, ("x", {"apikey": "k"})],
        "X-Api-Key": {"nested": "whole value masked"},
        "count": 3,
    }
    masked = mask_secrets(original)
    assert masked == {
        "headers": {"Authorization": MASK, "Accept": "application/json"},
        "body": [{"password": MASK, "user": "ann"}, ("x", {"apikey": MASK})],
        "X-Api-Key": MASK,
        "count": 3,
    }
    assert original["headers"]["Authorization"] == "Bearer abc"
    assert mask_secrets("plain") == "plain" and mask_secrets(None) is None


def test_mask_url_masks_secret_query_parameters_and_passwords():
    assert mask_url("http://erp/orders?date=2025-09-01&api_key=s3cr3t&token=t") == (
        "http://erp/orders?date=2025-09-01&api_key=***&token=***"
    )
    assert mask_url("https://ann:pw@host:8443/x") == "https://ann:***@host:8443/x"
    assert mask_url("http://erp/orders?date=1") == "http://erp/orders?date=1"


def test_masker_adds_configured_patterns_and_exact_names_to_the_built_in_rule():
    from streams.executors.masking import Masker, mask_event

    masker = Masker.of(["pin"], ["Customer-Ref"])
    assert masker.is_masked("apikey")  # built in, always
    assert masker.is_masked("PIN_CODE") and masker.is_masked("customer_ref")
    assert not masker.is_masked("customer") and not masker.is_masked("user")
    event = {"seq": 1, "data": {"x": [{"customer-ref": "c1", "ok": 1}], "Password": "p"},
             "labels": {"spin": "s"}, "message": "m"}  # fmt: skip
    shown = mask_event(event, masker)
    assert shown == {"seq": 1, "data": {"x": [{"customer-ref": MASK, "ok": 1}], "Password": MASK},
                     "labels": {"spin": MASK}, "message": "m"}  # fmt: skip
    assert event["data"]["Password"] == "p"  # the input is left alone
