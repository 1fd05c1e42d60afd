"""What a workflow body stores: edges join the connections, whatever else is given."""

from __future__ import annotations

from api.workflow_models import WorkflowBody

EDGE = {"source": "a", "target": "b"}


def test_edges_become_sequence_connections_even_beside_a_null_connections_list():
    for extra in ({}, {"connections": None}, {"connections": []}):
        stored = WorkflowBody.model_validate({"name": "w", **extra, "edges": [EDGE]}).changes()
        assert [(c["from_node_id"], c["to_node_id"], c["connection_type"])
                for c in stored["connections"]] == [("a", "b", "SEQUENCE")], extra
