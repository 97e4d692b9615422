"""The membrane: protected objects enter a capsule as revocable proxies; capsule values
leave as copies or reverse proxies.

Inbound (trusted -> capsule): public attributes readable, calls forwarded, results wrapped,
underscore names hidden, writes refused unless granted, every operator forwarded without
handing the raw object to capsule code.  Outbound (capsule -> trusted): exact primitives and
containers of them are copied; our own proxies are unwrapped; anything else leaves as a
reverse proxy that wraps every argument trusted code passes in.  Exceptions cross scrubbed.

``values`` says what crosses unchanged, ``scrub`` rebuilds exceptions, ``authority`` checks
revocation and write grants, and ``crossing`` holds the two proxy types and both directions.
"""

from ..values import VALUES, is_plain, plain_result
from .authority import WITHHELD_TYPES
from .crossing import (
    SPEEDUPS,
    Proxy,
    ReverseProxy,
    capability_of,
    class_for_capsule,
    export,
    target_of,
    unwrap,
    wrap,
)
from .scrub import scrub, scrub_outbound

__all__ = [
    "SPEEDUPS",
    "Proxy",
    "ReverseProxy",
    "VALUES",
    "WITHHELD_TYPES",
    "capability_of",
    "class_for_capsule",
    "export",
    "is_plain",
    "plain_result",
    "scrub",
    "scrub_outbound",
    "target_of",
    "unwrap",
    "wrap",
]
