"""The outbound benchmark's request count runs the real handlers against moto and says how many
requests a change costs; a change that did not reach WeCom would show in `tags_right`."""

from __future__ import annotations

from bench import outbound


def test_requests_per_change_are_counted_per_function_and_the_tags_end_right():
    result = outbound.requests_per_change(customers=3)
    assert result["tags_right"]
    assert result["wecom"] == {"/cgi-bin/externalcontact/mark_tag": 6}  # one per following member
    assert result["webhook_posts"] == 3
    assert result["aws"]["ChangeFeedFunction"].get("sqs.SendMessageBatch", 0) >= 1
    assert result["aws"]["WeComTagFunction"]["dynamodb.GetItem"] == 3  # the profile, once per change
    lines = outbound.render(
        {
            "requests": result,
            "latency": {
                "rate": 2,
                "seconds": 1,
                "changes": 2,
                "webhook": {"p50_s": 1.0, "p99_s": 1.5, "delivered": 2},
                "wecom_tags": {"p50_s": None, "p99_s": None, "delivered": 0},
            },
        }
    )
    assert any(line.startswith("| **all** |") for line in lines)
    assert "| `mark_tag` at WeCom (last member) | n/a | n/a | 0/2 |" in lines
