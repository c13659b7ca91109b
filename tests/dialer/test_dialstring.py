from __future__ import annotations

import pytest

from switchboard.dialer.dialstring import DEFAULT_TEMPLATE, DialStringTemplate, digits_of
from switchboard.dialer.lines import OutboundLine


def test_default_template_puts_the_lines_last_four_digits_first() -> None:
    template = DialStringTemplate()
    assert template.template == DEFAULT_TEMPLATE
    assert template.render(line_number="+98 21 9100 4567", customer="09121234567", trunk="mytrunk") == (
        "PJSIP/456709121234567@mytrunk"
    )


def test_persian_digits_and_punctuation() -> None:
    assert digits_of("۰۹۱۲-۱۲۳ ۴۵۶۷") == "09121234567"
    assert digits_of("٠٩١٢") == "0912"
    rendered = DialStringTemplate().render(line_number="۰۲۱۹۱۰۰۱۲۳۴", customer="(0912) 123 4567", trunk="t")
    assert rendered == "PJSIP/123409121234567@t"


def test_custom_templates() -> None:
    t = DialStringTemplate("SIP/{trunk}/{line}{customer}")
    assert (
        t.render(line_number="+1 555 0100", customer="+1 (555) 0199", trunk="out")
        == "SIP/out/1555010015550199"
    )
    assert OutboundLine("l", "+98 21 9100 4567").last4 == "4567"


@pytest.mark.parametrize(
    "bad", ["PJSIP/{number}@{trunk}", "PJSIP/{line_last4}@{trunk}", "PJSIP/{}{customer}"]
)
def test_bad_templates_fail_at_start_up(bad: str) -> None:
    with pytest.raises(ValueError):
        DialStringTemplate(bad)


def test_customer_without_digits_is_refused() -> None:
    with pytest.raises(ValueError):
        DialStringTemplate().render(line_number="1234", customer="n/a", trunk="t")


def test_customer_numbers_as_the_trunk_dials_them() -> None:
    from switchboard.dialer.dialstring import dialable

    template = DialStringTemplate()
    assert dialable("+989121234567", "IR") == "09121234567"
    assert digits_of(dialable("+12127365000", "IR")) == "0012127365000"  # international prefix from Iran
    assert template.render(line_number="02191000123", customer=dialable("+989121234567", "IR"),
                           trunk="trunk") == "PJSIP/012309121234567@trunk"
