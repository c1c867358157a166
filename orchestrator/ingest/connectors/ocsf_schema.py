"""The OCSF vocabulary the `generic` source checks: finding classes, enum ids, versions.

Copied from the OCSF schema (github.com/ocsf/ocsf-schema, tags v1.0.0 to 1.8.0), not from
a library: the Python OCSF libraries either refuse documented producer output or accept
`severity_id: "4"` (see docs/SIEMS.md, "Generic (OCSF)"). Each table names the schema file
it comes from, so a new OCSF release is a diff against those files.

Enum ids are closed sets: OCSF gives every enum `0` Unknown and `99` Other for values a
producer cannot map, so a number outside the set is a producer bug, not a new value.
"""

from __future__ import annotations

import re
from typing import Final

FINDINGS_CATEGORY: Final = 2  # categories.json: "findings"

# events/findings/security_finding.json (uid 1, deprecated since 1.1.0 but still emitted)
# and events/findings/detection_finding.json (uid 4, new in 1.1.0); class_uid = 2000 + uid.
SECURITY_FINDING: Final = 2001
DETECTION_FINDING: Final = 2004
ACCEPTED_CLASSES: Final = {
    DETECTION_FINDING: "Detection Finding",
    SECURITY_FINDING: "Security Finding",
}

# The other classes of the Findings category, named in the refusal so a sender knows why.
OTHER_FINDING_CLASSES: Final = {
    2002: "Vulnerability Finding",
    2003: "Compliance Finding",
    2005: "Incident Finding",
    2006: "Data Security Finding",
    2007: "Application Security Posture Finding",
    2008: "IAM Analysis Finding",
}

# events/findings/finding.json activity_id (1 Create, 2 Update, 3 Close) plus the base
# event's 0 Unknown and 99 Other. OCSF 1.0's findings.json had only 1 and 2; 3 arrived
# with 1.1 for both finding classes, so one set serves every 1.x version.
ACTIVITY_IDS: Final = frozenset({0, 1, 2, 3, 99})

# dictionary.json severity_id: 0 Unknown, 1 Informational, 2 Low, 3 Medium, 4 High,
# 5 Critical, 6 Fatal, 99 Other. Unchanged from 1.0.0 to 1.8.0.
SEVERITY_IDS: Final = frozenset({0, 1, 2, 3, 4, 5, 6, 99})

# dictionary.json confidence_id: 0 Unknown, 1 Low, 2 Medium, 3 High, 99 Other.
CONFIDENCE_IDS: Final = frozenset({0, 1, 2, 3, 99})

# events/findings/security_finding.json state_id (required there): 1 New, 2 In Progress,
# 3 Suppressed, 4 Resolved, plus 0 Unknown and 99 Other.
STATE_IDS: Final = frozenset({0, 1, 2, 3, 4, 99})
STATES_THAT_CLOSE: Final = frozenset({3, 4})  # Suppressed, Resolved

# objects/observable.json type_id, the values of dictionary.json types that carry
# "observable": 1 hostname_t, 2 ip_t, 4 username_t, 5 email_t, 10 resource_uid_t; and the
# object observables 20 Endpoint (objects/endpoint.json) and 21 User (objects/user.json).
OBSERVABLE_HOSTNAME: Final = 1
OBSERVABLE_IP: Final = 2
OBSERVABLE_USER_NAME: Final = 4
OBSERVABLE_EMAIL: Final = 5
OBSERVABLE_RESOURCE_UID: Final = 10
OBSERVABLE_ENDPOINT: Final = 20
OBSERVABLE_USER: Final = 21

# metadata.version is the schema's semantic version: "1.1.0", "1.0.0-rc.2" (what Security
# Lake 1.0 wrote), "1.9.0-dev". Minor releases of OCSF 1.x only add, so every 1.x is read.
_VERSION_1 = re.compile(r"^1(\.[0-9]+){0,2}([-+][0-9A-Za-z.+-]*)?$")


def is_ocsf_1(version: str) -> bool:
    return _VERSION_1.match(version.strip()) is not None


def class_label(class_uid: int) -> str:
    """`2003 (Compliance Finding)`, or just the number for a class outside Findings."""
    name = ACCEPTED_CLASSES.get(class_uid) or OTHER_FINDING_CLASSES.get(class_uid)
    return f"{class_uid} ({name})" if name else str(class_uid)
