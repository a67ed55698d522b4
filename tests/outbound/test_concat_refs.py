"""Concatenation references of long MTs: rotating per handset, bounded memory."""

from __future__ import annotations

from gateway.dispatcher import ConcatRefs


def test_references_rotate_per_destination() -> None:
    refs = ConcatRefs()
    first = refs.next("8613800000001", mt_id=300)
    assert first == 300 % 256  # a destination seen for the first time starts at its id
    assert [refs.next("8613800000001", mt_id=i) for i in range(3)] == [
        (first + 1) % 256, (first + 2) % 256, (first + 3) % 256]
    assert refs.next("8613800000002", mt_id=7) == 7  # another handset has its own sequence
    for _ in range(300):  # wraps within 8 bits
        assert 0 <= refs.next("8613800000001", mt_id=1) <= 255


def test_only_the_last_destinations_are_remembered() -> None:
    """A broadcast to a million numbers must not leave a million entries behind."""
    refs = ConcatRefs(size=1000)
    for n in range(50_000):
        refs.next(f"86138{n:08d}", mt_id=n)
    assert len(refs) == 1000
    # A recent destination keeps rotating; an evicted one starts again from its message id.
    assert refs.next("8613800049999", mt_id=5) == (49_999 + 1) % 256
    assert refs.next("8613800000000", mt_id=77) == 77
