"""User-facing text: zh-CN first, English second.

Every message a person reads (API error ``detail``, page label, CLI line) is written as
``_("English text")``; the English text is the msgid. Issue 11 backs this with Babel/gettext
catalogs; until then ``_`` returns its argument.
"""

from __future__ import annotations


def _(message: str) -> str:
    return message


N_ = _  # marks a message for extraction where it is translated later (constants, tables)
