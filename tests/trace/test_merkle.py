"""merkle.py against RFC 9162's definitions: Certificate Transparency's reference vectors;
then for every tree of 1..70 leaves, every leaf and every earlier size, the roots and
proofs built from stored nodes equal the ones built from all the leaves, use exactly the
nodes they list, verify, and stop verifying once anything about them is changed."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import pytest

from coffeetrace.trace import merkle
from coffeetrace.trace.merkle import Node

N = 70
LEAVES = [merkle.leaf_hash(hashlib.sha256(b"event %d" % i).digest()) for i in range(N)]
ROOTS = [merkle.root(LEAVES[:n]) for n in range(N + 1)]
SIZES = range(1, N + 1)

# Certificate Transparency's reference tree (RFC 6962 test data): inputs and the roots of
# the trees of 0..8 leaves.
CT_INPUTS = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657"]
CT_INPUTS.append("606162636465666768696a6b6c6d6e6f")
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_INCLUSION = {
    (0, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (5, 8): [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
}
CT_CONSISTENCY = {
    (1, 8): CT_INCLUSION[(0, 8)],
    (6, 8): [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
    (2, 5): [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ],
}


def _append_all(leaves: Sequence[bytes]) -> dict[Node, bytes]:
    """Every node, built the way the store builds them: one new_nodes per leaf."""
    nodes: dict[Node, bytes] = {}
    for size, leaf in enumerate(leaves):
        frontier = {a: nodes[a] for a in merkle.frontier_for_append(size)}
        nodes.update(merkle.new_nodes(size, leaf, frontier))
    return nodes


NODES = _append_all(LEAVES)


def _only(addresses: list[Node], size: int) -> dict[Node, bytes]:
    """Just the listed nodes, after checking each is listed once and is a complete
    subtree of the tree of `size` leaves (so a store of that tree has it)."""
    assert len(set(addresses)) == len(addresses)
    assert all((idx + 1) << level <= size for level, idx in addresses)
    return {a: NODES[a] for a in addresses}


def _each_needed(compute: Callable[[dict[Node, bytes]], object], nodes: dict[Node, bytes]) -> None:
    """Without any one of the listed nodes the computation cannot be done."""
    for address in nodes:
        fewer = {a: h for a, h in nodes.items() if a != address}
        with pytest.raises(merkle.MissingNode):
            compute(fewer)


def _flip(digest: bytes, at: int = 0) -> bytes:
    return digest[:at] + bytes([digest[at] ^ 0x01]) + digest[at + 1 :]


def _flipped_each(proof: list[bytes]) -> list[list[bytes]]:
    return [[*proof[:i], _flip(p, i % 32), *proof[i + 1 :]] for i, p in enumerate(proof)]


def _mangled(proof: list[bytes]) -> list[list[bytes]]:
    """The proof with one byte flipped in each element in turn, cut short, made longer."""
    longer = [*proof, hashlib.sha256(b"extra").digest()]
    return [*_flipped_each(proof), *([proof[:-1]] if proof else []), longer]


# ------------------------------------------------------------------ reference vectors


def test_hashes_are_rfc_9162s() -> None:
    assert merkle.leaf_hash(b"ab") == hashlib.sha256(b"\x00ab").digest()
    left, right = LEAVES[0], LEAVES[1]
    assert merkle.node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()
    assert merkle.root([]) == merkle.EMPTY_ROOT == hashlib.sha256(b"").digest()
    assert merkle.root_from_nodes(0, {}) == merkle.EMPTY_ROOT


def test_certificate_transparency_reference_vectors() -> None:
    leaves = [merkle.leaf_hash(bytes.fromhex(d)) for d in CT_INPUTS]
    nodes = _append_all(leaves)
    for n, want in enumerate(CT_ROOTS):
        assert merkle.root(leaves[:n]).hex() == want
        assert merkle.root_from_nodes(n, nodes).hex() == want
    for (index, size), proof in CT_INCLUSION.items():
        assert [p.hex() for p in merkle.inclusion_proof(index, leaves[:size])] == proof
        assert [p.hex() for p in merkle.inclusion_from_nodes(index, size, nodes)] == proof
        root = bytes.fromhex(CT_ROOTS[size])
        assert merkle.verify_inclusion(index, size, leaves[index], _raw(proof), root)
    for (m, n), proof in CT_CONSISTENCY.items():
        assert [p.hex() for p in merkle.consistency_proof(m, leaves[:n])] == proof
        assert [p.hex() for p in merkle.consistency_from_nodes(m, n, nodes)] == proof
        roots = bytes.fromhex(CT_ROOTS[m]), bytes.fromhex(CT_ROOTS[n])
        assert merkle.verify_consistency(m, n, *roots, _raw(proof))


def _raw(proof: list[str]) -> list[bytes]:
    return [bytes.fromhex(p) for p in proof]


# ------------------------------------------------------------------ stored nodes


def test_appending_stores_exactly_every_complete_aligned_subtree() -> None:
    expected = {
        (level, idx): merkle.root(LEAVES[idx << level : (idx + 1) << level])
        for level in range(N.bit_length())
        for idx in range(N >> level)
    }
    assert expected == NODES


def test_roots_from_nodes_equal_roots_from_leaves() -> None:
    for n in range(N + 1):
        nodes = _only(merkle.nodes_for_root(n), n)
        assert merkle.root_from_nodes(n, nodes) == ROOTS[n]
        _each_needed(lambda ns, n=n: merkle.root_from_nodes(n, ns), nodes)


@pytest.mark.parametrize("n", SIZES)
def test_inclusion_proofs_from_nodes_equal_paths_and_verify(n: int) -> None:
    for index in range(n):
        nodes = _only(merkle.nodes_for_inclusion(index, n), n)
        proof = merkle.inclusion_from_nodes(index, n, nodes)
        assert proof == merkle.inclusion_proof(index, LEAVES[:n])
        assert merkle.verify_inclusion(index, n, LEAVES[index], proof, ROOTS[n])
        _each_needed(lambda ns, i=index: merkle.inclusion_from_nodes(i, n, ns), nodes)


@pytest.mark.parametrize("n", SIZES)
def test_inclusion_proofs_fail_once_changed(n: int) -> None:
    for index in range(n):
        leaf, proof, root = LEAVES[index], merkle.inclusion_proof(index, LEAVES[:n]), ROOTS[n]
        assert not merkle.verify_inclusion(index, n, _flip(leaf), proof, root)
        assert not merkle.verify_inclusion(index, n, leaf, proof, _flip(root, 31))
        for bad in _mangled(proof):
            assert not merkle.verify_inclusion(index, n, leaf, bad, root)
        for other in range(-1, n + 1):
            if other != index:
                assert not merkle.verify_inclusion(other, n, leaf, proof, root)
        # another tree head (size, root): the proof is for this one only
        for size in (n - 1, n + 1):
            if 1 <= size <= N:
                assert not merkle.verify_inclusion(index, size, leaf, proof, ROOTS[size])


@pytest.mark.parametrize("n", SIZES)
def test_consistency_proofs_from_nodes_equal_proofs_and_verify(n: int) -> None:
    for m in range(1, n + 1):
        nodes = _only(merkle.nodes_for_consistency(m, n), n)
        proof = merkle.consistency_from_nodes(m, n, nodes)
        assert proof == merkle.consistency_proof(m, LEAVES[:n])
        assert merkle.verify_consistency(m, n, ROOTS[m], ROOTS[n], proof)
        _each_needed(lambda ns, m=m: merkle.consistency_from_nodes(m, n, ns), nodes)


@pytest.mark.parametrize("n", SIZES)
def test_consistency_proofs_fail_once_changed(n: int) -> None:
    for m in range(1, n + 1):
        proof = merkle.consistency_proof(m, LEAVES[:n])
        assert not merkle.verify_consistency(m, n, _flip(ROOTS[m]), ROOTS[n], proof)
        assert not merkle.verify_consistency(m, n, ROOTS[m], _flip(ROOTS[n], 31), proof)
        for bad in _mangled(proof):
            assert not merkle.verify_consistency(m, n, ROOTS[m], ROOTS[n], bad)
        # other tree heads (size, root) at either end
        for other in (m - 1, m + 1):
            if 1 <= other <= n:
                assert not merkle.verify_consistency(other, n, ROOTS[other], ROOTS[n], proof)
        for other in (n - 1, n + 1):
            if m <= other <= N:
                assert not merkle.verify_consistency(m, other, ROOTS[m], ROOTS[other], proof)


def test_new_nodes_need_their_frontier() -> None:
    for size in range(N):
        frontier = {a: NODES[a] for a in merkle.frontier_for_append(size)}
        assert all((idx + 1) << level <= size for level, idx in frontier)
        made = merkle.new_nodes(size, LEAVES[size], frontier)
        assert made[0] == ((0, size), LEAVES[size])
        assert all(NODES[a] == h for a, h in made)
        _each_needed(lambda ns, s=size: merkle.new_nodes(s, LEAVES[s], ns), frontier)


def test_the_roots_nodes_are_enough_to_go_on_appending() -> None:
    """What catch_up keeps between batches: from a tree's root nodes alone, appending any
    number of leaves makes every node there is."""
    for start in range(N):
        known = {a: NODES[a] for a in merkle.nodes_for_root(start)}
        for size in range(start, N):
            made = merkle.new_nodes(size, LEAVES[size], known)
            assert all(NODES[a] == h for a, h in made)
            known.update(made)
            known = {a: known[a] for a in merkle.nodes_for_root(size + 1)}


def test_a_huge_tree_needs_few_nodes() -> None:
    size = 2**40 + 12_345
    assert len(merkle.nodes_for_root(size)) == bin(size).count("1")
    assert len(merkle.nodes_for_inclusion(size - 1, size)) <= 2 * 41
    assert len(merkle.nodes_for_inclusion(0, size)) <= 2 * 41
    assert len(merkle.nodes_for_consistency(2**39 + 7, size)) <= 2 * 41
    assert len(merkle.frontier_for_append(2**40 - 1)) == 40


# ------------------------------------------------------------------ edge cases


def test_the_edges_of_consistency() -> None:
    root4, root5 = ROOTS[4], ROOTS[5]
    assert merkle.consistency_proof(4, LEAVES[:4]) == []
    assert merkle.verify_consistency(4, 4, root4, root4, [])
    assert not merkle.verify_consistency(4, 4, root4, root5, [])
    assert not merkle.verify_consistency(4, 4, root4, root4, [root4])
    assert not merkle.verify_consistency(4, 5, root4, root5, [])
    assert not merkle.verify_consistency(
        5, 4, root5, root4, merkle.consistency_proof(4, LEAVES[:5])
    )
    # from the empty tree: no proof is defined, so none is accepted
    assert not merkle.verify_consistency(0, 5, merkle.EMPTY_ROOT, root5, [])
    assert not merkle.verify_consistency(0, 0, merkle.EMPTY_ROOT, merkle.EMPTY_ROOT, [])
    for m, n in ((0, 5), (6, 5), (-1, 3), (0, 0)):
        with pytest.raises(ValueError):
            merkle.consistency_proof(m, LEAVES[:n] if n >= 0 else [])
        with pytest.raises(ValueError):
            merkle.nodes_for_consistency(m, n)


def test_the_edges_of_inclusion() -> None:
    assert merkle.inclusion_proof(0, LEAVES[:1]) == []
    assert merkle.verify_inclusion(0, 1, LEAVES[0], [], LEAVES[0])
    assert not merkle.verify_inclusion(0, 1, LEAVES[0], [LEAVES[1]], LEAVES[0])
    assert not merkle.verify_inclusion(0, 0, LEAVES[0], [], merkle.EMPTY_ROOT)
    for index, size in ((0, 0), (3, 3), (-1, 3)):
        with pytest.raises(ValueError):
            merkle.inclusion_proof(index, LEAVES[:size])
        with pytest.raises(ValueError):
            merkle.nodes_for_inclusion(index, size)
    with pytest.raises(ValueError):
        merkle.nodes_for_root(-1)


def test_hashes_of_the_wrong_length_never_verify() -> None:
    proof = merkle.inclusion_proof(5, LEAVES[:8])
    assert not merkle.verify_inclusion(5, 8, LEAVES[5][:31], proof, ROOTS[8])
    assert not merkle.verify_inclusion(5, 8, LEAVES[5], proof, ROOTS[8] + b"\x00")
    assert not merkle.verify_inclusion(5, 8, LEAVES[5], [proof[0][:31], *proof[1:]], ROOTS[8])
    cproof = merkle.consistency_proof(6, LEAVES[:8])
    assert not merkle.verify_consistency(6, 8, ROOTS[6][:31], ROOTS[8], cproof)
    assert not merkle.verify_consistency(6, 8, ROOTS[6], ROOTS[8], [b"", *cproof])
