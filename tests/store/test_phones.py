import pytest

from switchboard.phones import InvalidPhoneNumber, PhoneErrorReason, normalize, try_normalize


@pytest.mark.parametrize(
    "raw",
    [
        "09121234567",
        "+989121234567",
        "00989121234567",
        "9121234567",
        "۰۹۱۲۱۲۳۴۵۶۷",
        "٠٩١٢١٢٣٤٥٦٧",
        "+98 912 123 4567",
        "(0912) 123-4567",
        "\u200e+98\u200f9121234567",
        "٠٠٩٨٩١٢١٢٣٤٥٦٧",
        9121234567,
    ],
)
def test_iranian_forms_normalise_to_one_number(raw):
    n = normalize(raw, "IR")
    assert n.e164 == "+989121234567"
    assert n.national == "9121234567"
    assert n.region == "IR"
    assert n.national_dialing == "09121234567"
    assert n.timezone == "Asia/Tehran"


def test_other_region_and_explicit_country_code():
    assert normalize("+1 202 555 0123", "IR").e164 == "+12025550123"
    assert normalize("(202) 555-0123", "US").e164 == "+12025550123"
    assert normalize("020 7946 0958", "GB").national_dialing == "02079460958"


@pytest.mark.parametrize(
    "raw, reason",
    [
        ("", PhoneErrorReason.EMPTY),
        ("   ", PhoneErrorReason.EMPTY),
        ("abc", PhoneErrorReason.NOT_A_NUMBER),
        ("0912abc4567", PhoneErrorReason.NOT_A_NUMBER),
        ("12", PhoneErrorReason.TOO_SHORT),
        ("0912", PhoneErrorReason.TOO_SHORT),
        ("091212345678901234", PhoneErrorReason.TOO_LONG),
        ("+999123456789", PhoneErrorReason.INVALID_COUNTRY_CODE),
        ("09921234567999", PhoneErrorReason.TOO_LONG),
    ],
)
def test_invalid_numbers_carry_reason(raw, reason):
    with pytest.raises(InvalidPhoneNumber) as info:
        normalize(raw, "IR")
    assert info.value.reason == reason, info.value
    assert raw in str(info.value) or raw.strip() == ""


def test_possible_but_unassigned_is_invalid_for_region():
    with pytest.raises(InvalidPhoneNumber) as info:
        normalize("01001234567", "IR")  # right length, no such IR range
    assert info.value.reason in (PhoneErrorReason.INVALID_FOR_REGION, PhoneErrorReason.INVALID_LENGTH)
    assert "IR" in info.value.detail or "length" in info.value.detail


def test_try_normalize():
    assert try_normalize("nope") is None
    assert try_normalize("09121234567").e164 == "+989121234567"
