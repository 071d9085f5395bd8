import pytest
from hypothesis import given
from hypothesis import strategies as st
from scrm_sync.domain.jsapi import InvalidPageUrl, jsapi_signature, page_url_for_signing, sign_page

# WeCom's worked example (developer doc 96909)
TICKET = "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg"
NONCE = "Wm3WZYTPz0wzccnW"
TIMESTAMP = 1414587457
URL = "http://mp.weixin.qq.com?params=value"
SIGNATURE = "0f9de62fce790f9a083d5c99e95740ceb90c27ed"


def test_the_official_signature_vector():
    assert jsapi_signature(TICKET, NONCE, TIMESTAMP, URL) == SIGNATURE


def test_a_page_is_signed_without_its_fragment():
    signed = sign_page(TICKET, URL + "#/customer/wmEXT-1?tab=orders", NONCE, TIMESTAMP)
    assert signed.signature == SIGNATURE
    assert signed.as_json() == {"timestamp": TIMESTAMP, "nonceStr": NONCE, "signature": SIGNATURE}


def test_the_query_is_signed_as_given_not_url_encoded():
    encoded = sign_page(TICKET, "https://crm.example.cn/sidebar/?a=%E4%B8%AD&b=1", NONCE, TIMESTAMP)
    decoded = sign_page(TICKET, "https://crm.example.cn/sidebar/?a=中&b=1", NONCE, TIMESTAMP)
    assert encoded.signature != decoded.signature
    assert encoded.signature == jsapi_signature(
        TICKET, NONCE, TIMESTAMP, "https://crm.example.cn/sidebar/?a=%E4%B8%AD&b=1"
    )


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("", "required"),
        ("/sidebar/", "absolute"),
        ("javascript:alert(1)", "absolute"),
        ("ftp://crm.example.cn/sidebar/", "absolute"),
        ("https:///sidebar/", "absolute"),
        ("https://crm.example.cn/side bar/", "whitespace"),
        ("https://crm.example.cn/" + "a" * 3000, "longer"),
    ],
)
def test_what_is_not_a_page_url_is_refused_with_the_reason(url, reason):
    with pytest.raises(InvalidPageUrl, match=reason):
        page_url_for_signing(url)


@given(
    st.text(
        alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="#"), max_size=80
    )
)
def test_any_fragment_is_ignored(fragment):
    page = "https://crm.example.cn/sidebar/?x=1"
    assert page_url_for_signing(f"{page}#{fragment}") == page
