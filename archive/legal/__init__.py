"""Legal review of major enforcement decisions (重大执法决定法制审核), issue 12.

A decision that needed legal review and did not get it, or failed it, must not be made
(未经法制审核或审核未通过的, 不得作出决定). The catalogue (目录清单, versioned data) classifies each
proposed decision (拟作出的决定); designated legal staff answer the checklist and give an opinion that
binds the SHA-256 of one exact version; :mod:`archive.legal.gate` refuses every path to the
``decision`` stage without that approval.
"""
