"""URLs of the API's resources."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from service.plan import Plan


def canonical_url(p: Plan) -> str:
    """The fully specified GET URL of this plan's representation."""
    query = {
        k: ",".join(str(x) for x in v) if isinstance(v, list) else str(v)
        for k, v in p.canonical().items()
        if k != "scheme"
    }
    return f"/v1/tensors/{quote(p.scheme.scheme)}?" + urlencode(query, safe=",:")
