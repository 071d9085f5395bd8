import pytest
from scrm_sync.domain.identifiers import Identifier, InvalidIdentifier, normalize_identifier


@pytest.mark.parametrize("spelling", ["138 0013 8000", "+86-138-0013-8000", "008613800138000", "13800138000"])
def test_phone_spellings_normalize_to_one_e164_number(spelling):
    assert normalize_identifier("phone", spelling).value == "+8613800138000"


@pytest.mark.parametrize("value", ["138****8000", "12345", "not a phone", "", "   "])
def test_masked_or_invalid_phones_are_rejected(value):
    with pytest.raises(InvalidIdentifier):
        normalize_identifier("phone", value)


def test_foreign_numbers_keep_their_country_code():
    assert normalize_identifier("phone", "+1 650 253 0000").value == "+16502530000"


def test_email_is_trimmed_and_lower_cased():
    assert normalize_identifier("email", "  Wang.XM@Example.COM ").value == "wang.xm@example.com"


def test_scoped_identifiers_keep_their_scope_and_need_one():
    ident = normalize_identifier("wechat_openid", "oyORnuP8q7ou2gfYjqLzSIWZf0rs", "wx2c2769f8efd9abc2")
    assert ident.key == "wechat_openid#wx2c2769f8efd9abc2#oyORnuP8q7ou2gfYjqLzSIWZf0rs"
    assert Identifier.from_key(ident.key) == ident
    with pytest.raises(InvalidIdentifier, match="needs a scope"):
        normalize_identifier("wechat_openid", "oyORnuP8q7ou2gfYjqLzSIWZf0rs")


def test_same_value_in_different_scopes_is_a_different_identifier():
    a = normalize_identifier("member_no", "M1", "brand-a")
    b = normalize_identifier("member_no", "M1", "brand-b")
    assert a.key != b.key


def test_unknown_types_are_rejected():
    with pytest.raises(InvalidIdentifier, match="unknown identifier type"):
        normalize_identifier("passport", "E12345678")
