import jwt
import pytest
from scrm_sync.domain.sidebar_session import AUDIENCE, InvalidSession, issue_session, session_member

KEY = "k" * 32
CORP = "ww0000000000000dev"
NOW = 1_790_000_000


def test_a_session_names_its_member_until_it_expires():
    token = issue_session("zhangsan", CORP, KEY, NOW, 600)
    assert session_member(token, CORP, KEY, NOW + 599) == "zhangsan"
    with pytest.raises(InvalidSession, match="expired"):
        session_member(token, CORP, KEY, NOW + 600)


@pytest.mark.parametrize(
    "token",
    [
        None,
        "",
        "not-a-jwt",
        issue_session("zhangsan", CORP, "x" * 32, NOW, 600),  # another key
        issue_session("zhangsan", "wwOTHERCORP", KEY, NOW, 600),  # another corp
        jwt.encode({"sub": "zhangsan", "iss": CORP, "aud": "other", "iat": NOW, "exp": NOW + 600}, KEY),
        jwt.encode({"sub": "zhangsan", "iss": CORP, "aud": AUDIENCE, "iat": NOW}, KEY),  # no expiry
        jwt.encode(
            {"sub": "zhangsan", "iss": CORP, "aud": AUDIENCE, "iat": NOW, "exp": NOW + 600}, KEY, "HS512"
        ),
        jwt.encode(
            {"sub": "zhangsan", "iss": CORP, "aud": AUDIENCE, "iat": NOW, "exp": NOW + 600}, None, "none"
        ),
    ],
)
def test_anything_but_a_valid_token_of_this_corp_is_refused(token):
    with pytest.raises(InvalidSession):
        session_member(token, CORP, KEY, NOW)
