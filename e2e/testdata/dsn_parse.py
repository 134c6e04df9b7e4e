"""Read a delivery status notification with Python's email package and
print what the e2e test checks, as JSON: the content type and its
report-type, the type of each part, the message/delivery-status part's
field groups (RFC 3464 section 2: per-message, then per-recipient) and the
returned message or header section."""
import email
import email.policy
import json
import sys

msg = email.message_from_bytes(open(sys.argv[1], "rb").read(), policy=email.policy.compat32)
out = {
    "type": msg.get_content_type(),
    "report_type": msg.get_param("report-type"),
    "from": msg.get("From", ""),
    "subject": msg.get("Subject", ""),
    "parts": [],
    "groups": [],
    "returned": "",
}
if msg.is_multipart():
    for part in msg.get_payload():
        ct = part.get_content_type()
        out["parts"].append(ct)
        if ct == "message/delivery-status":
            # The email package parses the part into one Message per group.
            for group in part.get_payload():
                out["groups"].append({k: " ".join(str(v).split()) for k, v in group.items()})
        elif ct == "message/rfc822":
            out["returned"] = part.get_payload(0).as_string()
        elif ct == "text/rfc822-headers":
            out["returned"] = part.get_payload()
print(json.dumps(out))
