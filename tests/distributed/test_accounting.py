import dist_workers
from asrkit.distributed.accounting import CommAccounting, ring_allgather_wire, ring_allreduce_wire


def test_ring_conventions():
    assert ring_allreduce_wire(1000, 1) == 0.0
    assert ring_allreduce_wire(1000, 2) == 1000.0
    assert ring_allreduce_wire(1000, 4) == 1500.0
    assert ring_allgather_wire(100, 4) == 300.0


def test_tensorboard_logging():
    class W:
        def __init__(self):
            self.s = {}

        def add_scalar(self, k, v, step):
            self.s[k] = (v, step)

    a = CommAccounting("gtc", 2)
    a.add(payload=72, wire=72, dense=128, seconds=0.5, elements_sent=16, elements_total=32, collectives=2)
    a.end_step()
    w = W()
    a.log_to(w, 7)
    assert w.s["comm/gtc/compression_ratio"] == (128 / 72, 7)
    assert w.s["comm/gtc/last_step_payload_bytes"] == (72, 7)
    assert a.fraction_sent == 0.5 and "compression" in a.format()


def test_accounting_exact_for_known_model(run_workers):
    """32 float32 parameters (128 B); gradient C: 16 entries of magnitude 1, 16 of 0.01; tau = 0.5."""
    for r in run_workers(dist_workers.accounting_worker):
        ddp = r["ddp"]
        assert ddp["steps"] == 3 and ddp["payload_bytes"] == 3 * 128 and ddp["wire_bytes"] == 3 * 128.0
        assert ddp["compression_ratio"] == 1.0 and ddp["collectives"] == 3
        gtc = r["gtc"]  # step 0: dense all-reduce; steps 1, 2: 16 codes x 4 B + 8 B header
        assert gtc["steps"] == 3
        assert gtc["payload_bytes"] == 128 + 2 * (16 * 4 + 8)
        assert gtc["wire_bytes"] == 128 + 2 * (1 * (16 * 4 + 8))
        assert gtc["dense_bytes"] == 3 * 128
        assert gtc["compression_ratio"] == 384 / 272
        for mode in ("bmuf", "ma"):  # 4 steps, tau = 2: two parameter all-reduces of 128 B
            b = r[mode]
            assert b["steps"] == 4 and b["payload_bytes"] == 256 and b["wire_bytes"] == 256.0
            assert b["dense_bytes"] == 512 and b["compression_ratio"] == 2.0
