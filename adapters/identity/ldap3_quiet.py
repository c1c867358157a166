"""ldap3, imported once with the deprecation warnings it sets off silenced.

ldap3 2.9.1 imports names that pyasn1 >= 0.6.1 deprecates (tagMap, typeMap); under
`filterwarnings = error` that warning would fail every importer. The warning fires only
on the first import, so whichever LDAP module loads first would need the filter: the
LDAP modules take ldap3 from here instead, and none of them has to.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", r"(tagMap|typeMap) is deprecated", DeprecationWarning)
    import ldap3
    from ldap3.core.exceptions import LDAPCommunicationError, LDAPException
    from ldap3.utils.conv import escape_filter_chars
    from ldap3.utils.dn import escape_rdn, to_dn

__all__ = [
    "LDAPCommunicationError",
    "LDAPException",
    "escape_filter_chars",
    "escape_rdn",
    "ldap3",
    "to_dn",
]
