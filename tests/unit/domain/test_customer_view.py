from scrm_sync.domain.customer_view import customer_view
from scrm_sync.domain.followers import follower_field, followers, follows
from scrm_sync.domain.identifiers import Identifier
from scrm_sync.domain.masking import mask_contact_details, mask_identifier_value
from scrm_sync.domain.precedence import FieldVersion
from scrm_sync.domain.profile import Profile


def version(source: str) -> FieldVersion:
    return FieldVersion(
        key="k", source=source, occurred_at="2026-11-20T02:00:00+00:00", event_id=f"{source}-1"
    )


def profile() -> Profile:
    values = {
        "name": "韩梅梅",
        "member_level": "gold",
        "wecom_tags": "高净值, 母婴,,",
        "address": "广东省深圳市南山区科技园1号",
        "email": "meimei@example.com",
        follower_field("zhangsan"): "zhangsan",
        follower_field("lisi"): None,  # lisi deleted the customer
        "wecom_follow_user": "zhangsan",
    }
    return Profile(
        "p_1",
        identifiers=[
            Identifier("phone", "+8613800138000"),
            Identifier("wecom_external_userid", "wmEXT-1", "ww-corp"),
            Identifier("youzan_open_id", "yz-1"),
        ],
        values=values,
        versions={name: version("pos" if name == "member_level" else "wecom") for name in values},
    )


ORDER = {
    "kind": "order",
    "source": "tmall",
    "event_id": "tb-1",
    "data": {"order_id": "TB-1", "receiver_mobile": "13900001111"},
}


def test_the_view_names_the_channels_tags_and_followers_and_masks_contact_details():
    view = customer_view(profile(), [ORDER], masked=True)
    assert view["channels"] == ["pos", "tmall", "wecom", "youzan"]
    assert view["tags"] == ["高净值", "母婴"]
    assert view["followed_by"] == ["zhangsan"]
    assert view["attributes"]["address"] == "广东省深圳市****"
    assert view["attributes"]["email"] == "m***@example.com"
    assert [i["value"] for i in view["identifiers"] if i["type"] == "phone"] == ["138****8000"]
    assert view["timeline"][0]["data"]["receiver_mobile"] == "139****1111"
    assert not [name for name in view["attributes"] if name.startswith("wecom_follower_")]


def test_unmasked_for_the_full_contact_role():
    view = customer_view(profile(), [ORDER], masked=False)
    assert view["attributes"]["address"] == "广东省深圳市南山区科技园1号"
    assert view["timeline"][0]["data"]["receiver_mobile"] == "13900001111"


def test_followers_are_exactly_the_members_whose_field_names_them():
    values = {follower_field("zhangsan"): "zhangsan", follower_field("lisi"): "zhangsan", "other": "lisi"}
    assert followers(values) == ["zhangsan"]
    assert follows(values, "zhangsan") and not follows(values, "lisi") and not follows(values, "")


def test_masking_covers_phones_in_text_and_keys_that_name_contact_details():
    masked = mask_contact_details(
        {"note": "回电 13800138000", "home_address": "北京市朝阳区", "buyer_phone": "021-1234"}
    )
    assert masked == {
        "note": "回电 138****8000",
        "home_address": "北京市朝阳区****",
        "buyer_phone": "021****34",
    }
    assert mask_identifier_value("email", "a@b.cn") == "a***@b.cn"
    assert mask_identifier_value("member_no", "M-88") == "M-88"
