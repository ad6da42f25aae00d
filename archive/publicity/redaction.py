"""Redaction (技术处理): find personal data in a decision text and mask it before publication.

Pure functions, no database: the decision services feed in the text and the names known from the case.

What is found, in priority order (an earlier kind wins where two overlap):

- ``id-number``: 18-digit resident ID numbers whose ISO 7064 MOD 11-2 check digit is right (a random
  18-digit number passes one time in eleven; a region code, a plausible birth date and the check digit
  together keep amounts and case numbers out);
- ``bank-card``: 13-19 digits (optionally grouped by spaces or dashes) passing the Luhn check;
- ``mobile``: 11-digit mainland mobile numbers (1[3-9]...), optionally +86, optionally grouped;
- ``landline``: area code 0xx(x) with 7-8 digits, and 7-8 digit numbers right after a phone label;
- ``email``;
- ``plate``: licence plates, ordinary (京A12345) and new-energy (京AD12345, 京A12345D);
- ``address``: the street part of an address (路/街/巷/村 ... 号 ...), and whatever follows an address
  label (住址：...); the province, city and district stay readable;
- ``name``: natural persons' names, from the names the case gives (the party, persons named at
  registration) and from a heuristic (a common surname after a label such as 当事人： or before
  "，男/女"). 张三 -> 张某某. Names inside an organisation's name (张三餐饮有限公司) stay.

Masks keep the length of numbers (so a reader sees that a number was there and of which kind) and never
reveal the length of a given name.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"


def id_check_digit(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character of the first 17 digits of a resident ID number."""
    return ID_CHECK[sum(int(c) * w for c, w in zip(first17, ID_WEIGHTS, strict=True)) % 11]


def valid_id_number(value: str) -> bool:
    if len(value) != 18 or not value[:17].isdigit() or value[0] not in "123456789":
        return False
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    if not 1880 <= born.year <= 2100:
        return False
    return id_check_digit(value[:17]) == value[17].upper()


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


@dataclass(frozen=True)
class Finding:
    kind: str
    start: int
    end: int
    replacement: str
    field: str = "text"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


_NOT_DIGIT_BEFORE = r"(?<![0-9A-Za-z])"
_NOT_DIGIT_AFTER = r"(?![0-9A-Za-z])"
ID_RE = re.compile(_NOT_DIGIT_BEFORE + r"[1-9]\d{16}[0-9Xx]" + _NOT_DIGIT_AFTER)
CARD_RE = re.compile(_NOT_DIGIT_BEFORE + r"[1-9]\d{3}(?:[ -]?\d){9,15}" + r"(?![0-9A-Za-z])")
MOBILE_RE = re.compile(r"(?<![0-9A-Za-z+])(?:(?:\+|00)?86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}" + _NOT_DIGIT_AFTER)
LANDLINE_RE = re.compile(
    r"(?<![0-9A-Za-z])(?:\(0\d{2,3}\)|（0\d{2,3}）|0\d{2,3}[ -]?)[2-9]\d{6,7}(?:-\d{1,6})?" + _NOT_DIGIT_AFTER
)
PHONE_LABEL_RE = re.compile(r"(?:电话|联系方式|手机|座机|Tel|TEL|tel)[：:\s]*([2-9]\d{6,7})(?!\d)")
EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
PLATE_RE = re.compile(
    rf"[{_PROVINCES}][A-HJ-NP-Z][·•\s]?"
    r"(?:[DF][A-HJ-NP-Z0-9]\d{4}|\d{5}[DF]|[A-HJ-NP-Z0-9]{4}[A-HJ-NP-Z0-9挂学警港澳])"
    r"(?![A-Za-z0-9])"
)
_CN = "\u4e00-\u9fff"
_NUM = "0-9０-９一二三四五六七八九十百零〇"
# The administrative divisions (kept) and the street part (masked).
ADDRESS_RE = re.compile(
    rf"(?P<admin>(?:[{_CN}]{{2,7}}(?:省|自治区))?(?:[{_CN}]{{1,7}}(?:市|自治州|盟))?"
    rf"(?:[{_CN}]{{1,7}}(?:区|县|旗))?(?:[{_CN}]{{1,7}}(?:镇|乡|街道))?)"
    rf"(?P<street>[{_CN}{_NUM}]{{1,12}}?(?:大道|路|街|巷|胡同|弄|道|村|小区|社区|组)"
    rf"(?:[{_NUM}A-Za-z-]+(?:号院|号楼|号|栋|幢|座|单元|室|层|楼|组))+)"
)
ADMIN_RE = re.compile(
    rf"(?:[{_CN}]{{2,7}}(?:省|自治区))?(?:[{_CN}]{{1,7}}?(?:市|自治州|盟))?(?:[{_CN}]{{1,7}}?(?:区|县|旗))?"
)
ADDRESS_LABEL_RE = re.compile(
    r"(?:住址|住所|家庭住址|现住址|户籍地|居住地|家住|地址)[：:\s]*([^，。；,;\n]{2,60})"
)

ORG_SUFFIXES = (
    "有限责任公司",
    "股份有限公司",
    "有限公司",
    "分公司",
    "公司",
    "集团",
    "合作社",
    "事务所",
    "经营部",
    "门市部",
    "商行",
    "工作室",
    "超市",
    "酒店",
    "宾馆",
    "餐厅",
    "饭店",
    "医院",
    "诊所",
    "药店",
    "学校",
    "协会",
    "银行",
    "支行",
    "分行",
    "厂",
    "店",
    "中心",
)
ORG_RE = re.compile(rf"[{_CN}（）()A-Za-z0-9]{{2,30}}?(?:{'|'.join(ORG_SUFFIXES)})")

COMPOUND_SURNAMES = [
    "欧阳",
    "司马",
    "上官",
    "诸葛",
    "东方",
    "皇甫",
    "尉迟",
    "公孙",
    "慕容",
    "长孙",
    "宇文",
    "司徒",
    "令狐",
    "夏侯",
    "轩辕",
    "端木",
    "独孤",
    "南宫",
    "西门",
    "万俟",
    "闻人",
    "呼延",
    "澹台",
    "公冶",
    "太史",
    "申屠",
    "钟离",
    "宗政",
    "濮阳",
    "淳于",
    "单于",
    "赫连",
    "拓跋",
]
# The common surnames (百家姓, the ~200 most frequent): enough for the heuristic; known names from
# the case cover the rest.
SURNAMES = set(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
    "常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季"
    "裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄"
    "窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池"
    "查麻苑迟邝官封谈匡鞠惠荆乐冀郁胥南班储原栗燕楚鄢劳谌奚皮粟冼蔺楼盘满闻位厉伊仝区郜海阚花权强帅屠豆"
    "朴盖练廉禹井祖漆巴丰支卿国狄平计索宣晋相初门云容敬来扈晁芮都普阙浦戈伏鹿薄邸雍辜羊阿乌母裘亓修邰赫"
    "杭况那宿鲜印逯隆茹诸战慕危玉银亢嵇公哈湛宾戎勾茅利於呼居揭干但尉冶斯元束檀衣信展阴昝智幸奉植衡富尧"
    "闭由"
)
_GIVEN = rf"[{_CN}]{{1,2}}"
NAME_LABELS = (
    "当事人|被处罚人|被处罚单位负责人|申请人|被申请人|违法嫌疑人|嫌疑人|行为人|证人|受害人|被害人|被侵害人|"
    "法定代表人|负责人|经营者|监护人|委托代理人|代理人|驾驶人|驾驶员|车主|户主|姓名|被检查人|陪同人"
)
NAME_LABEL_RE = re.compile(rf"(?:{NAME_LABELS})[：:\s]*(?P<name>[{_CN}]{{2,4}})(?=[，,。；;：:\s（(、]|$)")
NAME_SEX_RE = re.compile(rf"(?P<name>[{_CN}]{{2,4}})(?=[，,、]\s*(?:男|女)[，,、。；;\s])")
# Characters that never start or fill a given name here (already masked, or grammar words).
_NOT_GIVEN = set("某甲乙丙丁等与和及的了在于对向将被由")


def surname_of(name: str) -> str | None:
    for compound in COMPOUND_SURNAMES:
        if name.startswith(compound) and len(name) > len(compound):
            return compound
    return name[0] if name and name[0] in SURNAMES and len(name) >= 2 else None


def mask_name(name: str) -> str:
    surname = surname_of(name) or name[:1]
    return f"{surname}某某"


def _plausible_name(candidate: str) -> str | None:
    """The longest prefix of ``candidate`` that looks like a person's name, or None."""
    surname = surname_of(candidate)
    if surname is None:
        return None
    given = candidate[len(surname) :]
    if not given or given[0] in _NOT_GIVEN:
        return None
    given = given[:2]
    if any(c in _NOT_GIVEN for c in given):
        given = given[:1]
    return surname + given


def _mask_digits(value: str) -> str:
    return re.sub(r"[0-9Xx]", "*", value)


def _org_spans(text: str, organisations: Iterable[str]) -> list[tuple[int, int]]:
    spans = [(m.start(), m.end()) for m in ORG_RE.finditer(text)]
    for org in organisations:
        if org:
            spans += [(m.start(), m.end()) for m in re.finditer(re.escape(org), text)]
    return spans


def find(
    text: str,
    *,
    names: Sequence[str] = (),
    organisations: Sequence[str] = (),
    keep: Sequence[str] = (),
    field: str = "text",
) -> list[Finding]:
    """Every piece of personal data in ``text``, non-overlapping, in text order.

    ``names``: natural persons known from the case (always masked where they occur outside an
    organisation's name). ``organisations``: names that stay. ``keep``: names that stay although they
    look like persons (enforcement officers, whose names are public on the roster)."""
    found: list[Finding] = []

    def add(kind: str, start: int, end: int, replacement: str) -> None:
        if start >= end or text[start:end] == replacement:
            return  # nothing, or something already masked
        if any(start < f.end and f.start < end for f in found):
            return  # an earlier (stronger) kind already covers it
        found.append(Finding(kind, start, end, replacement, field))

    for m in ID_RE.finditer(text):
        if valid_id_number(m.group()):
            add("id-number", m.start(), m.end(), _mask_digits(m.group()))
    for m in CARD_RE.finditer(text):
        digits = re.sub(r"[ -]", "", m.group())
        if 13 <= len(digits) <= 19 and luhn_ok(digits) and not MOBILE_RE.fullmatch(m.group()):
            add("bank-card", m.start(), m.end(), _mask_digits(m.group()))
    for m in MOBILE_RE.finditer(text):
        add("mobile", m.start(), m.end(), _mask_digits(m.group()))
    for m in LANDLINE_RE.finditer(text):
        add("landline", m.start(), m.end(), _mask_digits(m.group()))
    for m in PHONE_LABEL_RE.finditer(text):
        add("landline", m.start(1), m.end(1), _mask_digits(m.group(1)))
    for m in EMAIL_RE.finditer(text):
        add("email", m.start(), m.end(), "***@***")
    for m in PLATE_RE.finditer(text):
        value = m.group()
        add("plate", m.start(), m.end(), value[:2] + re.sub(r"[A-Za-z0-9挂学警港澳]", "*", value[2:]))
    for m in ADDRESS_LABEL_RE.finditer(text):
        value = m.group(1)
        # Keep the administrative divisions readable when the address starts with them.
        admin = ADMIN_RE.match(value)
        keep_len = len(admin.group()) if admin is not None else 0
        add("address", m.start(1) + keep_len, m.end(1), "××")
    for m in ADDRESS_RE.finditer(text):
        add("address", m.start("street"), m.end("street"), "××")

    orgs = _org_spans(text, organisations)
    kept = set(keep)

    def in_org(start: int, end: int) -> bool:
        return any(s <= start and end <= e for s, e in orgs)

    def add_name(start: int, name: str) -> None:
        end = start + len(name)
        if name in kept or in_org(start, end):
            return
        add("name", start, end, mask_name(name))

    for name in sorted({n.strip() for n in names if n and n.strip()}, key=len, reverse=True):
        for m in re.finditer(re.escape(name), text):
            add_name(m.start(), name)
    for rx in (NAME_LABEL_RE, NAME_SEX_RE):
        for m in rx.finditer(text):
            guessed = _plausible_name(m.group("name"))
            if guessed is not None:
                add_name(m.start("name"), guessed)
                # The same name elsewhere in the text, now that we know it.
                for again in re.finditer(re.escape(guessed), text):
                    add_name(again.start(), guessed)
    return sorted(found, key=lambda f: f.start)


def person_names(text: str) -> list[str]:
    """Natural persons the heuristic names in ``text`` (after a label, or before "，男/女"): used to
    learn the names a case's other records give, so that the decision masks them wherever they occur."""
    out: list[str] = []
    for rx in (NAME_LABEL_RE, NAME_SEX_RE):
        for m in rx.finditer(text):
            name = _plausible_name(m.group("name"))
            if name is not None and name not in out:
                out.append(name)
    return out


def apply(text: str, findings: Sequence[Finding]) -> str:
    out: list[str] = []
    pos = 0
    for f in sorted(findings, key=lambda f: f.start):
        out.append(text[pos : f.start])
        out.append(f.replacement)
        pos = f.end
    out.append(text[pos:])
    return "".join(out)


def id_numbers(text: str) -> list[str]:
    """The resident ID numbers still in ``text`` (what approval refuses unless overridden)."""
    return [m.group() for m in ID_RE.finditer(text) if valid_id_number(m.group())]


def diff(before: str, after: str) -> list[str]:
    """A line diff the publisher reads: what the redaction changed, with a little context."""
    return list(
        difflib.unified_diff(
            before.splitlines(), after.splitlines(), "decision", "published", n=1, lineterm=""
        )
    )
