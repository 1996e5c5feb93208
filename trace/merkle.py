"""A transparency-log Merkle tree (RFC 9162 section 2.1, the algorithms of RFC 6962) over
leaf hashes: hashing, roots, inclusion and consistency proofs, and their verification.

Each computation exists twice: from all the leaf hashes (the RFC's recursive definitions
as written, for small trees and as the reference in tests), and from stored complete
subtrees (what merkle_store keeps in chain_nodes), so that a root or a proof reads
O(log n) nodes however long the chain is.

A node address is (level, index): level 0 holds the leaf hashes, and node (l, i) is the
MTH of the complete aligned subtree over leaves [i * 2**l, (i + 1) * 2**l). Once a tree
of n leaves is stored, every node whose range ends at or before n is there.

Why those nodes suffice: the RFC's recursion starts at [0, n) and splits a range [a, b)
at a + k, k the largest power of two smaller than b - a. Every range it reaches lies
inside one aligned block of a power of two at least its size: [0, n) does; then the left
part [a, a + k) is itself a complete aligned subtree, and the right part [a + k, b) lies
inside the aligned block [a + k, a + 2k). So every MTH(D[a:b]) the recursion asks for is
either one node (b - a a power of two) or, splitting on down its right edge, the
right-fold of the complete aligned subtrees given by the binary digits of b - a, highest
first (`_decompose`).

Pure functions, no database. Argument errors raise ValueError; a node missing from a
mapping raises MissingNode.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

Node = tuple[int, int]  # (level, index)
Range = tuple[int, int]  # leaves [start, end)

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


class MissingNode(LookupError):
    """A node a computation needs is not in the mapping it was given."""


# ------------------------------------------------------------------ hashing


def leaf_hash(data: bytes) -> bytes:
    """The hash of a leaf: SHA-256(0x00 || data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


# ------------------------------------------------------------------ from all the leaves


def root(leaves: Sequence[bytes]) -> bytes:
    """MTH of the tree over `leaves` (leaf hashes already); SHA-256 of nothing if empty."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return node_hash(root(leaves[:k]), root(leaves[k:]))


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(index, D[n]) of RFC 9162 2.1.3.1: the sibling hashes from the leaf up."""
    _check_index(index, len(leaves))
    return _path(index, leaves)


def _path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if m < k:
        return _path(m, leaves[:k]) + [root(leaves[k:])]
    return _path(m - k, leaves[k:]) + [root(leaves[:k])]


def consistency_proof(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 9162 2.1.4.1, for 0 < m <= n (empty when m == n)."""
    _check_sizes(m, len(leaves))
    return _subproof(m, leaves, True)


def _subproof(m: int, leaves: Sequence[bytes], known: bool) -> list[bytes]:
    if m == len(leaves):
        return [] if known else [root(leaves)]
    k = _split(len(leaves))
    if m <= k:
        return _subproof(m, leaves[:k], known) + [root(leaves[k:])]
    return _subproof(m - k, leaves[k:], False) + [root(leaves[:k])]


# ------------------------------------------------------------------ verification


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 2.1.3.2: does `proof` show the leaf hash `leaf` at `index` in the tree of
    `size` leaves whose root is `root`? False for anything malformed."""
    if not 0 <= index < size or not _all_hashes([leaf, root, *proof]):
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False  # the proof is longer than the path
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            fn, sn = _past_right_edge(fn, sn)
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(
    m: int, n: int, root_m: bytes, root_n: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 2.1.4.2: does `proof` show that the tree of `m` leaves with root `root_m`
    is a prefix of the tree of `n` leaves with root `root_n`?

    The RFC's algorithm is for 0 < m < n. For m == n the proof is SUBPROOF(m, D[m], true),
    empty, and holds when the roots are equal. m <= 0 is False: the RFC defines no proof
    from the empty tree, so nothing offered as one is evidence of anything."""
    if not 0 < m <= n or not _all_hashes([root_m, root_n, *proof]):
        return False
    if m == n:
        return not proof and root_m == root_n
    if not proof:
        return False
    path = [root_m, *proof] if m & (m - 1) == 0 else list(proof)
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False  # the proof is longer than the paths
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            fn, sn = _past_right_edge(fn, sn)
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == root_m and sr == root_n


def _past_right_edge(fn: int, sn: int) -> tuple[int, int]:
    """RFC 9162's inner step after combining with a left sibling: if fn is even (the node
    is the last of its level, with no sibling), climb until fn is odd or 0."""
    if not fn & 1:
        while fn and not fn & 1:
            fn, sn = fn >> 1, sn >> 1
    return fn, sn


def _all_hashes(values: Sequence[bytes]) -> bool:
    return all(len(v) == HASH_SIZE for v in values)


# ------------------------------------------------------------------ from stored nodes


def nodes_for_root(size: int) -> list[Node]:
    """The nodes whose right-fold is the root of the tree of `size` leaves (none for 0):
    one per 1-bit of `size`. They are also all that later appends combine with."""
    if size < 0:
        raise ValueError(f"a tree size cannot be negative (got {size})")
    return _decompose(0, size)


def nodes_for_inclusion(index: int, size: int) -> list[Node]:
    """The nodes inclusion_from_nodes reads for the proof of leaf `index` in `size`."""
    _check_index(index, size)
    return [node for span in _path_ranges(index, size) for node in _decompose(*span)]


def nodes_for_consistency(m: int, n: int) -> list[Node]:
    """The nodes consistency_from_nodes reads for the proof from size `m` to `n`."""
    _check_sizes(m, n)
    return [node for span in _proof_ranges(m, n) for node in _decompose(*span)]


def root_from_nodes(size: int, nodes: Mapping[Node, bytes]) -> bytes:
    """The root of the tree of `size` leaves, from (at least) nodes_for_root(size)."""
    addresses = nodes_for_root(size)
    return _fold(addresses, nodes) if addresses else EMPTY_ROOT


def inclusion_from_nodes(index: int, size: int, nodes: Mapping[Node, bytes]) -> list[bytes]:
    """inclusion_proof(index, leaves[:size]), from nodes_for_inclusion(index, size)."""
    _check_index(index, size)
    return [_fold(_decompose(*span), nodes) for span in _path_ranges(index, size)]


def consistency_from_nodes(m: int, n: int, nodes: Mapping[Node, bytes]) -> list[bytes]:
    """consistency_proof(m, leaves[:n]), from nodes_for_consistency(m, n)."""
    _check_sizes(m, n)
    return [_fold(_decompose(*span), nodes) for span in _proof_ranges(m, n)]


def frontier_for_append(size: int) -> list[Node]:
    """The stored nodes that appending leaf number `size` combines with: its left
    siblings on the way up, one per trailing 1-bit of `size`, lowest first."""
    if size < 0:
        raise ValueError(f"a tree size cannot be negative (got {size})")
    found: list[Node] = []
    level, index = 0, size
    while index & 1:
        found.append((level, index - 1))
        level, index = level + 1, index >> 1
    return found


def new_nodes(size: int, leaf: bytes, frontier: Mapping[Node, bytes]) -> list[tuple[Node, bytes]]:
    """The nodes completed by appending the leaf hash `leaf` as leaf number `size` to a
    tree of `size` leaves: the leaf node, then each parent it completes, bottom up.
    `frontier` holds (at least) frontier_for_append(size)."""
    made: list[tuple[Node, bytes]] = [((0, size), leaf)]
    current = leaf
    for level, index in frontier_for_append(size):
        current = node_hash(_get(frontier, (level, index)), current)
        made.append(((level + 1, index >> 1), current))
    return made


def _decompose(start: int, end: int) -> list[Node]:
    """The complete aligned subtrees, left to right, whose right-fold is MTH(D[start:end])
    for a range the RFC's recursion reaches (module docstring): one per binary digit of
    end - start, highest first."""
    found: list[Node] = []
    while start < end:
        width = 1 << ((end - start).bit_length() - 1)
        assert start % width == 0, f"[{start}, {end}) is not a range of the recursion"
        found.append((width.bit_length() - 1, start // width))
        start += width
    return found


def _fold(addresses: Sequence[Node], nodes: Mapping[Node, bytes]) -> bytes:
    """node_hash(h1, node_hash(h2, ... hk)) of the addressed nodes: the MTH of their range."""
    current = _get(nodes, addresses[-1])
    for address in reversed(addresses[:-1]):
        current = node_hash(_get(nodes, address), current)
    return current


def _path_ranges(index: int, size: int) -> list[Range]:
    """The ranges whose MTHs make PATH(index, D[size]), in the proof's order (leaf up)."""
    found: list[Range] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            found.append((start + k, end))
            end = start + k
        else:
            found.append((start, start + k))
            start += k
    return found[::-1]


def _proof_ranges(m: int, n: int) -> list[Range]:
    """The ranges whose MTHs make PROOF(m, D[n]), in the proof's order: SUBPROOF's
    recursion walked top down (it ends at a range ending at m), then reversed."""
    found: list[Range] = []
    start, end, known = 0, n, True
    while end != m:
        k = _split(end - start)
        if m - start <= k:
            found.append((start + k, end))
            end = start + k
        else:
            found.append((start, start + k))
            start, known = start + k, False
    if not known:
        found.append((start, end))  # SUBPROOF(m, D[m], false) = {MTH(D[m])}
    return found[::-1]


def _get(nodes: Mapping[Node, bytes], address: Node) -> bytes:
    try:
        return nodes[address]
    except KeyError:
        raise MissingNode(
            f"Merkle node (level {address[0]}, index {address[1]}) is missing"
        ) from None


def _check_index(index: int, size: int) -> None:
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of {size} leaves")


def _check_sizes(m: int, n: int) -> None:
    if not 0 < m <= n:
        raise ValueError(f"a consistency proof needs 0 < m <= n (got m={m}, n={n})")
