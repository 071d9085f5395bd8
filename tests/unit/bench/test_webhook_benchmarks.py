"""The webhook benchmarks keep measuring what they claim: the handler's environment comes from
template.yaml, every AWS call the handler signs is answered and counted on its clients, and the
WeCom peer comparison reads the same pushes as ours (wechatpy is installed by `make bench` only,
so its comparison is skipped without it). Tiny counts: these check the harness, not the figures."""

from __future__ import annotations

import importlib.util

import botocore.auth
import pytest
from scrm_local.settings import Settings
from scrm_local.template import Template

from bench import webhook_cpu, wecom_peer
from bench.webhook_harness import (
    PUSHES,
    ROOT,
    SignedCallCounter,
    aws_answered_in_process,
    webhook_environment,
)


def test_the_environment_is_the_templates_webhook_function_plus_the_runtime() -> None:
    settings = Settings(template_path=ROOT / "template.yaml", project_root=ROOT, stack_name="bench")
    declared = Template.load(settings).function("WebhookFunction").environment
    env = webhook_environment()
    assert declared.items() <= env.items()
    assert env["AWS_REGION"] and env["POWERTOOLS_TRACE_DISABLED"] == "1"


def test_every_channel_push_is_acked_and_its_aws_calls_are_counted_on_the_handlers_clients() -> None:
    results = webhook_cpu.handler_cpu(pushes=2, runs=1, warmup=0)
    assert set(results) == set(PUSHES)
    for name, figures in results.items():
        assert figures["cpu_us_per_push"] > 0 and figures["own_cpu_us_per_push"] > 0, name
    # an authentic platform push is landed and queued before the ack, whichever the services
    assert results["wecom (AES, 客户联系 event)"]["calls_per_push"] >= 1
    assert webhook_cpu.render({"handler": results, "calls": {}})


def test_each_candidate_operation_is_one_signed_call_answered_in_process() -> None:
    costs = webhook_cpu.call_costs(calls=10, runs=1)  # asserts the counted calls match the calls made
    assert {"S3 PutObject", "SQS SendMessage", "Kinesis PutRecord", "Firehose PutRecord"} <= {
        label.split(" (")[0] for label in costs
    }
    assert all(c["us_per_call"] > 0 for c in costs.values())


def test_requests_are_signed_as_in_lambda_without_awscrt_and_only_inside() -> None:
    crt_or_not = botocore.auth.AUTH_TYPE_MAPS["v4"]
    with aws_answered_in_process(SignedCallCounter()):
        assert botocore.auth.AUTH_TYPE_MAPS["v4"] is botocore.auth.SigV4Auth
        assert botocore.auth.AUTH_TYPE_MAPS["s3v4"] is botocore.auth.S3SigV4Auth
    assert botocore.auth.AUTH_TYPE_MAPS["v4"] is crt_or_not


def test_our_crypto_core_reads_the_safe_mode_pushes_it_built() -> None:
    pushes = wecom_peer.safe_mode_pushes(4)
    fields = [wecom_peer.ours_core(push) for push in pushes]
    assert [f["MsgType"] for f in fields] == ["event", "event", "event", "text"]
    assert len({push.msg_signature for push in pushes}) == 4


def test_without_wechatpy_the_comparison_says_why_instead_of_a_figure() -> None:
    reason = "wechatpy could not be imported (ModuleNotFoundError: No module named 'wechatpy')"
    lines = wecom_peer.render({"unavailable": reason})
    assert "not measured" in lines[0] and "No module named 'wechatpy'" in lines[0]


@pytest.mark.skipif(importlib.util.find_spec("wechatpy") is None, reason="`make bench` installs wechatpy")
def test_wechatpy_and_ours_compare_on_the_same_pushes() -> None:
    results = wecom_peer.run(count=8, rounds=1, chunk=4)
    assert results["core"]["ratio"] > 0 and results["adapter"]["ratio"] > 0
    assert len(wecom_peer.render(results)) == 6


@pytest.mark.skipif(importlib.util.find_spec("wechatpy") is None, reason="`make bench` installs wechatpy")
def test_a_peer_that_reads_a_push_differently_is_reported_not_timed() -> None:
    pushes = wecom_peer.safe_mode_pushes(2)
    wrong_corp = wecom_peer.PeerCrypto(
        wecom_peer.CREDENTIALS["token"], wecom_peer.CREDENTIALS["encoding_aes_key"], "ww-not-ours"
    )
    reason = wecom_peer._disagreement(wrong_corp, pushes)
    assert reason is not None and "InvalidCorpIdException" in reason
