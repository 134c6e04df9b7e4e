#!/usr/bin/python3
"""Parse one RFC 5322 message from stdin with Python's email package (an
independent parser) and print its structure as JSON on stdout:

{"headers": [[name, decoded value], ...],
 "defects": ["DefectName", ...],          # of every part
 "body": {"content_type": ..., "parts": [...]}          # multipart
      or {"content_type", "charset", "cte", "filename", "disposition",
          "content_id", "data_b64"}                      # leaf, decoded bytes
}
"""
import base64
import json
import sys
from email import policy
from email.parser import BytesParser

msg = BytesParser(policy=policy.default).parse(sys.stdin.buffer)
defects = []


def walk(part):
    defects.extend(type(d).__name__ for d in part.defects)
    node = {"content_type": part.get_content_type()}
    if part.is_multipart():
        node["parts"] = [walk(p) for p in part.iter_parts()]
        return node
    payload = part.get_payload(decode=True) or b""
    node.update(
        charset=part.get_content_charset(),
        cte=part.get("Content-Transfer-Encoding", ""),
        filename=part.get_filename(),
        disposition=part.get_content_disposition(),
        content_id=part.get("Content-ID"),
        data_b64=base64.b64encode(payload).decode("ascii"),
    )
    return node


body = walk(msg)
headers = []
for name, value in msg.items():
    try:
        headers.append([name, str(value)])
        defects.extend(type(d).__name__ for d in getattr(value, "defects", ()))
    except Exception as e:  # a header Python cannot read is a failure
        defects.append("HeaderError:%s:%s" % (name, e))
        headers.append([name, ""])
json.dump({"headers": headers, "defects": defects, "body": body}, sys.stdout)
