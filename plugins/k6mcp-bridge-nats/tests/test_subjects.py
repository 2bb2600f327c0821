"""Subject tokens: Kubernetes names (dots) and any other text, one token each, reversible."""

from __future__ import annotations

import pytest

from k6mcp_bridge_nats.subjects import (
    WINDOW_PREFIX,
    durable_name,
    message_id,
    run_filter,
    subject,
    token,
    untoken,
    window_id,
)


@pytest.mark.parametrize("name", ["my-test.run", "a_b", "a.b", "a%2Eb", "", "runner 1/2>*", "é"])
def test_a_name_is_one_token_and_comes_back(name: str) -> None:
    text = token(name)
    assert text and not set(text) & set(". *>\t")
    assert untoken(text) == name


def test_names_that_differ_have_different_tokens() -> None:
    assert len({token(n) for n in ["a.b", "a_b", "a%2Eb", "a-b"]}) == 4


def test_subject_id_and_durable() -> None:
    assert subject("k6-test.prod", "1") == "k6mcp.state.v1.k6-test%2Eprod.1"
    assert message_id("r", "i", 7) == "r.i.7"
    assert durable_name("a.b").startswith("k6mcp-merge-") and "." not in durable_name("a.b")


def test_window_subjects_and_ids() -> None:
    assert subject("a.b", "1", WINDOW_PREFIX) == "k6mcp.window.v1.a%2Eb.1"
    assert run_filter("a.b", WINDOW_PREFIX) == "k6mcp.window.v1.a%2Eb.*"
    assert window_id("r", "i", 1796168449312, 7, 1796168440) == "r.i.w1796168449312.7.1796168440"
