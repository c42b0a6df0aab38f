"""Contract test suites, one per pluggable role, in the style of Optuna's ``StorageTestCase``:
subclass one in your own tests (pytest collects the subclass), say how to build your
implementation, and every promise runlab relies on is checked against it.

    from runlab.contracts.sinks import SinkContract

    class TestMySink(SinkContract):
        def make_sink(self, tmp_path):
            return MySink({"folder": str(tmp_path / "out")})

runlab's own sinks, launchers and loops pass the same suites (tests/test_contracts.py).
"""
