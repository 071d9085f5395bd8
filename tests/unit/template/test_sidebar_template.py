"""The sidebar's hosting in template.yaml: a private bucket read only by its CloudFront
distribution, every sidebar API route forwarded uncached on the same origin, and the functions
that call WeCom behind a fixed egress IP when asked."""

from __future__ import annotations

from typing import Any

from tests.unit.template.sam import TEMPLATE

RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
# the functions whose code calls qyapi.weixin.qq.com with an app secret (trusted-IP rule)
CALLS_WECOM_API = {"SidebarApiFunction", "EnrichmentFunction", "WeComTagFunction"}


def distribution() -> dict[str, Any]:
    return dict(RESOURCES["SidebarDistribution"]["Properties"]["DistributionConfig"])


def sidebar_api_paths() -> set[str]:
    return {
        event["Properties"]["Path"]
        for event in RESOURCES["SidebarApiFunction"]["Properties"]["Events"].values()
        if event["Type"] == "HttpApi"
    }


def test_every_sidebar_api_route_is_forwarded_uncached_on_the_pages_origin():
    behaviors = {b["PathPattern"]: b for b in distribution()["CacheBehaviors"]}
    assert sidebar_api_paths() == {"/sidebar/session", "/sidebar/jsapi-config", "/sidebar/customer"}
    for path in sidebar_api_paths():
        assert behaviors[path]["TargetOriginId"] == "api", path
        # sessions, signatures and customers are never cached
        assert behaviors[path]["CachePolicyId"] == CACHING_DISABLED, path
        assert behaviors[path]["ViewerProtocolPolicy"] == "https-only"
    assert distribution()["DefaultCacheBehavior"]["TargetOriginId"] == "page"


def test_the_page_bucket_is_private_and_read_only_by_its_distribution():
    bucket = RESOURCES["SidebarBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    (page,) = [o for o in distribution()["Origins"] if o["Id"] == "page"]
    assert page["OriginAccessControlId"] == {"Fn::GetAtt": ["SidebarOriginAccessControl", "Id"]}
    statements = RESOURCES["SidebarBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    allows = [s for s in statements if s["Effect"] == "Allow"]
    assert [s["Principal"] for s in allows] == [{"Service": "cloudfront.amazonaws.com"}]
    assert "SidebarDistribution" in str(allows[0]["Condition"]["StringEquals"]["AWS:SourceArn"])
    assert allows[0]["Action"] == "s3:GetObject"


def test_with_the_egress_vpc_the_functions_that_call_wecom_leave_through_the_fixed_ip():
    functions = {
        name
        for name, resource in RESOURCES.items()
        if resource["Type"] == "AWS::Serverless::Function"
        and "WeComEgressVpc" in str(resource["Properties"].get("VpcConfig"))
    }
    assert functions == CALLS_WECOM_API
    for name in CALLS_WECOM_API:
        condition, enabled, disabled = RESOURCES[name]["Properties"]["VpcConfig"]["Fn::If"]
        assert condition == "WeComEgressVpc" and disabled == {"Ref": "AWS::NoValue"}
        assert enabled["SecurityGroupIds"] == [{"Ref": "WeComEgressFunctionsSecurityGroup"}]
    routes = RESOURCES["WeComEgressPrivateDefaultRoute"]["Properties"]
    assert routes["NatGatewayId"] == {"Ref": "WeComEgressNat"}
    nat = RESOURCES["WeComEgressNat"]["Properties"]
    assert nat["AllocationId"] == {"Fn::GetAtt": ["WeComEgressIp", "AllocationId"]}
    assert TEMPLATE["Outputs"]["WeComEgressIp"]["Value"] == {"Ref": "WeComEgressIp"}
    egress_resources = [n for n, r in RESOURCES.items() if n.startswith("WeComEgress")]
    assert all(RESOURCES[n].get("Condition") == "WeComEgressVpc" for n in egress_resources)
