"""`collection_paused`: the loader's objects skip the young generations, garbage is still freed."""

from __future__ import annotations

import gc

from infrastream.manifests import collection_paused


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def _generation_of(obj: object) -> int | None:
    for generation in range(3):
        if any(o is obj for o in gc.get_objects(generation)):
            return generation
    return None


def test_objects_allocated_while_paused_go_to_the_oldest_generation() -> None:
    gc.collect()
    with collection_paused():
        assert not gc.isenabled()
        kept = [_Node() for _ in range(3)]
    assert gc.isenabled()
    assert _generation_of(kept) == 2
    assert gc.get_freeze_count() == 0


def test_a_cycle_made_while_paused_is_still_collected() -> None:
    gc.collect()
    with collection_paused():
        first, second = _Node(), _Node()
        first.other, second.other = second, first
        del first, second
    assert gc.collect() >= 2


def test_nested_pauses_enable_collection_only_at_the_outermost() -> None:
    with collection_paused():
        with collection_paused():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()


def test_objects_frozen_on_purpose_stay_frozen() -> None:
    gc.collect()
    sentinel = _Node()  # a tracked object, frozen with everything else on purpose
    gc.freeze()
    try:
        assert _generation_of(sentinel) is None  # in the permanent generation
        with collection_paused():
            _Node()
        # still frozen: not moved back into a generation (the count itself may drop, as
        # frozen objects of other threads are freed by reference counting meanwhile)
        assert _generation_of(sentinel) is None
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
