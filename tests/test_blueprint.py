"""insitu.blueprint reads dict trees and conduit-shaped nodes alike."""
import numpy as np
import pytest

from support.ascent_harness import ConduitLikeNode
from insitu.blueprint import BlueprintError, blocks, published_fields, uniform_domain


def two_domains():
    a = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    g = np.zeros_like(a, dtype=np.int32)
    g[:, :, -1] = 1
    d0 = uniform_domain(a, field="e", origin=(0, 0, 0), spacing=(0.5, 0.5, 0.5), ghost=g, cycle=7, time=0.7,
                        domain_id=3)
    d1 = uniform_domain(-a, field="e", association="element", origin=(2.5, 0, 0), spacing=(0.5, 0.5, 0.5),
                        cycle=7, time=0.7, domain_id=4)
    return [d0, d1], a


@pytest.mark.parametrize("wrap", [lambda t: t, ConduitLikeNode])
def test_blocks_from_dicts_and_conduit_nodes(wrap):
    tree, a = two_domains()
    got = list(blocks(wrap(tree), "e"))
    assert [b.domain_id for b in got] == [3, 4]
    b0, b1 = got
    assert b0.values.shape == (4, 5, 6) and np.array_equal(b0.values, a)
    assert b0.association == "vertex" and b0.cycle == 7 and b0.time == pytest.approx(0.7)
    assert b0.owned_box == ((0, 4), (0, 5), (0, 5))
    assert b0.spacing == (0.5, 0.5, 0.5) and b0.dims == (6, 5, 4)
    assert b1.association == "element" and b1.values.shape == (4, 5, 6) and b1.ghost is None
    assert b1.global_start() == (0, 0, 5)  # x origin 2.5 / 0.5
    assert published_fields(wrap(tree)) == ["e"]


def test_element_ghosts_on_vertex_field():
    v = np.zeros((5, 5, 5), np.float32)
    d = uniform_domain(v, field="e")
    cells = np.zeros((4, 4, 4), np.int32)
    cells[0] = 1  # first layer of cells along z is ghost
    d["fields"]["ascent_ghosts"] = {"association": "element", "topology": "topo", "values": cells.ravel()}
    (b,) = blocks([d], "e")
    assert b.owned_box == ((1, 5), (0, 5), (0, 5))


def test_single_domain_tree_counts_as_one():
    tree, _ = two_domains()
    assert len(list(blocks(tree[0], "e"))) == 1


def test_unknown_field_lists_published():
    tree, _ = two_domains()
    with pytest.raises(BlueprintError, match=r"unknown field 'x'.*\['e'\]"):
        list(blocks(tree, "x"))


def test_non_uniform_coordset_rejected_naming_type():
    tree, _ = two_domains()
    tree[0]["coordsets"]["coords"]["type"] = "rectilinear"
    with pytest.raises(BlueprintError, match="rectilinear"):
        list(blocks(tree, "e"))


def test_wrong_value_count_and_vector_field():
    tree, _ = two_domains()
    tree[0]["fields"]["e"]["values"] = np.zeros(7)
    with pytest.raises(BlueprintError, match="has 7 values"):
        list(blocks(tree, "e"))
    tree, _ = two_domains()
    tree[0]["fields"]["e"]["values"] = {"u": np.zeros(120), "v": np.zeros(120)}
    with pytest.raises(BlueprintError, match="components"):
        list(blocks(tree, "e"))
