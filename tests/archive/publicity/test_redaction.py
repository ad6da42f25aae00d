"""The redaction engine on its own: each kind of personal data found and masked, check digits
checked, organisations and officers left readable."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from archive.publicity import redaction as r


def make_id(first17: str) -> str:
    return first17 + r.id_check_digit(first17)


def luhn_complete(prefix: str) -> str:
    for d in "0123456789":
        if r.luhn_ok(prefix + d):
            return prefix + d
    raise AssertionError("unreachable")


ID = make_id("11010519491231002")  # the check digit is X
CARD = luhn_complete("622202000000000000")  # 19 digits


def redact(text: str, **kw: list[str]) -> str:
    return r.apply(text, r.find(text, **kw))


def test_id_check_digit_is_iso_7064_mod_11_2() -> None:
    assert ID == "11010519491231002X"
    assert r.valid_id_number(ID) and r.valid_id_number(ID.lower())
    assert not r.valid_id_number(ID[:-1] + "3")  # wrong check digit
    assert not r.valid_id_number("110105194913310021")  # month 13
    assert not r.valid_id_number("0" + ID[1:])


def test_every_kind_is_found_and_masked() -> None:
    text = (
        f"当事人：张三，男，身份证号{ID}，住址：北京市朝阳区建国路88号2号楼301室，"
        "联系电话138 1234 5678，座机（010）87654321，邮箱zhang.san@example.com，"
        "驾驶京A12345号小型汽车，另有新能源车粤BD12345，"
        f"银行卡号{CARD[:4]} {CARD[4:8]} {CARD[8:12]} {CARD[12:16]} {CARD[16:]}。"
    )
    findings = r.find(text, names=["张三"])
    kinds = {f.kind for f in findings}
    assert kinds == {"name", "id-number", "address", "mobile", "landline", "email", "plate", "bank-card"}
    out = r.apply(text, findings)
    for secret in (
        "张三",
        ID,
        "建国路88号",
        "1234 5678",
        "87654321",
        "zhang.san",
        "A12345",
        "BD12345",
        CARD[4:8],
    ):
        assert secret not in out, secret
    assert "张某某" in out and "北京市朝阳区" in out  # the divisions stay readable
    assert "京A*****" in out and "粤B******" in out


def test_numbers_that_are_not_personal_data_stay() -> None:
    text = "罚款人民币500元，案号2024001，文书编号X公(治)决字〔2024〕123号，金额 12345678901234567 元。"
    assert redact(text) == text  # 17 digits: no ID; no Luhn-valid card; no phone shape


def test_names_from_the_case_and_the_heuristic_but_not_organisations_or_officers() -> None:
    text = (
        "当事人：王小明，男，系北京市朝阳区张三餐饮有限公司经营者。证人李红，女，在场。"
        "执法人员赵刚出示执法证件。王小明对处罚无异议。欧阳娜娜，女，为陪同人。"
    )
    out = redact(text, names=["张三"], keep=["赵刚"])
    assert "王小明" not in out and out.count("王某某") == 2
    assert "李红" not in out and "李某某" in out
    assert "欧阳某某" in out
    assert "张三餐饮有限公司" in out  # an organisation's name stays, even with a person's name in it
    assert "赵刚" in out  # enforcing officers are public on the roster


def test_a_masked_text_has_nothing_left_to_find() -> None:
    text = f"当事人：张三，身份证号{ID}，电话13812345678。"
    out = redact(text, names=["张三"])
    assert r.find(out, names=["张三"]) == []
    assert r.id_numbers(out) == []


def test_diff_shows_what_changed() -> None:
    before = f"当事人：张三\n身份证号{ID}\n罚款500元"
    after = redact(before, names=["张三"])
    d = r.diff(before, after)
    assert any(line.startswith("-") and ID in line for line in d)
    assert any(line.startswith("+") and "*" * 18 in line for line in d)


@given(
    region=st.integers(110000, 659999),
    born=st.dates(
        min_value=__import__("datetime").date(1900, 1, 1), max_value=__import__("datetime").date(2024, 12, 31)
    ),
    seq=st.integers(0, 999),
    before=st.text(alphabet="当事人罚款元。，", max_size=5),
)
def test_any_valid_id_number_is_masked(region: int, born: object, seq: int, before: str) -> None:
    first17 = f"{region}{born:%Y%m%d}{seq:03d}"
    value = make_id(first17)
    out = redact(f"{before}身份证{value}号")
    assert value not in out and r.id_numbers(out) == []


@pytest.mark.parametrize("plate", ["京A12345", "沪AD12345", "粤B12345F", "川A·1234学", "浙C5678警"])
def test_plates(plate: str) -> None:
    assert plate not in redact(f"车辆{plate}停放")
