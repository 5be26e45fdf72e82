"""tf.distribute: two replicas give the one-device losses, terms and step, for every kind and
strategy, batch statistics included (they are taken over the global batch)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def test_two_replicas_equal_one_device() -> None:
    out = subprocess.run([sys.executable, str(HERE / "distributed_check.py")],
                         capture_output=True, text=True, timeout=1800,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert out.returncode == 0, out.stderr[-3000:]
    rows = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(rows) == 18
    for row in rows:
        where = f"{row['kind']} via {row['via']}"
        assert row["keys"] == ["loss", "p", "q", "task_loss", "w"], where
        assert row["loss_rel"] < 2e-6, where
        assert row["weight_abs"] < 1e-6, where
        assert row["moved"] > 1e-4, where    # the step did change the weights


def test_masked_sequences_two_replicas_equal_one_device() -> None:
    """Every mask-reading kind (`axis`, ar, tar) on a masked sequence whose padding is uneven
    across the replicas (the counts of unmasked steps are global sums), and a scheduled loss
    weight."""
    out = subprocess.run([sys.executable, str(HERE / "distributed_check.py"), "sequence"],
                         capture_output=True, text=True, timeout=1800,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert out.returncode == 0, out.stderr[-3000:]
    rows = json.loads(out.stdout.strip().splitlines()[-1])
    assert [row["via"] for row in rows] == ["activity_regularizer", "add_loss", "output"]
    for row in rows:
        assert row["keys"] == ["loss", "out_loss_weight", *(f"s{k}" for k in range(8)),
                               "task_loss"], row["via"]
        assert row["loss_rel"] < 2e-6, row["via"]
        assert row["weight_abs"] < 1e-6, row["via"]
        assert row["moved"] > 1e-4, row["via"]
