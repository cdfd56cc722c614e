"""Second review: the share of tasks a second annotator labels too.

A task is routed by a hash of its key (the pair id) and a seed, not by a random
draw: re-pushing a batch routes every task the same way, a task's routing
never depends on which other tasks exist, and a different seed picks a
different, equally sized sample. The flag is written into the task
(``data.second_review``), so what was asked is read back from Label Studio,
not recomputed.

In Label Studio Community the flag is a task field annotators can filter on
in the Data Manager, and the flagged tasks also get ``overlap = 2``, so the
"Label All Tasks" stream keeps serving them until two annotators have
labelled them.
"""

from __future__ import annotations

import hashlib

#: Task data field holding the routing (a column in Label Studio's Data Manager).
SECOND_REVIEW_FIELD = "second_review"
#: Annotators a second-review task waits for (Label Studio's task ``overlap``).
SECOND_REVIEW_OVERLAP = 2


def second_review(key: str, share: float = 0.2, seed: int = 0) -> bool:
    """Whether the task `key` goes to a second annotator: true for about `share` of keys.

    >>> second_review("clip-1:abc", share=0.0), second_review("clip-1:abc", share=1.0)
    (False, True)
    >>> picked = [k for k in range(1000) if second_review(f"pair-{k}", 0.2)]
    >>> 150 < len(picked) < 250, picked == [k for k in range(1000)
    ...                                      if second_review(f"pair-{k}", 0.2)]
    (True, True)
    """
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"second-review share must be within [0, 1], got {share}")
    digest = hashlib.sha256(f"{seed}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share
