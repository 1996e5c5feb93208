"""The ledger's shape of a batch's keys: runs of consecutive seqs, and the other keys.

A ledger key is a string (a set's `msg_id`, or its `seq` in decimal). A key in the
decimal form of a number up to 2^63 - 2 is a seq key; a device's consecutive seq keys of
one kind are claimed as one row of `ingest_seq_ranges` (migration 0056, whose
`ingest_seq_key` is the same rule in SQL), every other key as a row of
`ingest_text_keys`. Pure functions: no database here (ingest/store.py claims them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# A seq may be 2^63 - 1, but the range [n, n] of that one has no bigint upper bound (the
# exclusion constraint's int8range is half-open inside): it stays a text key.
MAX_SEQ = 2**63 - 2
_MAX_DIGITS = len(str(MAX_SEQ))

# (device_id, key, kind, readings): one entry of Prepared.ledger
LedgerEntry = tuple[str, str, str, int]


def seq_key(key: str) -> int | None:
    """The number a seq key stands for, or None for a key that is not one ("017", "h-1")."""
    # isascii first: str.isdigit is also true of other scripts' digits and of "²"
    if not key.isascii() or not key.isdigit() or len(key) > _MAX_DIGITS:
        return None
    if len(key) > 1 and key[0] == "0":
        return None
    n = int(key)
    return n if n <= MAX_SEQ else None


@dataclass
class SeqRun:
    device_id: str
    first: int
    kind: str
    readings: list[int] = field(default_factory=list)  # per set, in seq order

    @property
    def last(self) -> int:
        return self.first + len(self.readings) - 1


@dataclass
class LedgerRows:
    runs: list[SeqRun] = field(default_factory=list)
    text_keys: list[LedgerEntry] = field(default_factory=list)
    # the seq keys one by one (device, seq, kind, readings), for the claim key by key
    seqs: list[tuple[str, int, str, int]] = field(default_factory=list)


def ledger_rows(ledger: list[LedgerEntry]) -> LedgerRows:
    """Split a batch's ledger entries (no key twice, as Preparer makes them) into runs of
    consecutive seqs per device and kind, and the other keys."""
    out = LedgerRows()
    for device_id, key, kind, n in ledger:
        seq = seq_key(key)
        if seq is None:
            out.text_keys.append((device_id, key, kind, n))
        else:
            out.seqs.append((device_id, seq, kind, n))
    # sorted by device and seq: a buffer's sets, and a device's messages one after the
    # other, become one run each, whatever the order the batch received them in
    previous: SeqRun | None = None
    for device_id, seq, kind, n in sorted(out.seqs):
        if (
            previous is not None
            and previous.device_id == device_id
            and previous.kind == kind
            and seq == previous.last + 1
        ):
            previous.readings.append(n)
            continue
        previous = SeqRun(device_id, seq, kind, [n])
        out.runs.append(previous)
    return out
