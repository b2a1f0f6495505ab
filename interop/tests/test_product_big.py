"""Product interop at scale: delta-rs loads a table of 1,000,000 active
files that protolake wrote, checkpointed (bounded row groups), cleaned up
behind the checkpoint and reopened (commitlog's TestMillionFiles), and reads
the same file list protolake does.

Minutes and gigabytes: runs only with PLTEST_INTEROP_BIG=1
(PLTEST_INTEROP_BIG_FILES changes the file count; the default is the
1,000,000 files: about 4 minutes and 10 GB peak RSS, most of it writing the
table, on the 2-core development machine). Both loads report their time
and peak RSS in the output (pytest -s).
"""

import os
import resource
import subprocess
import time

import pytest

from protolake_interop import REPO_ROOT

BIG = os.environ.get("PLTEST_INTEROP_BIG") == "1"
FILES = int(os.environ.get("PLTEST_INTEROP_BIG_FILES", "1000000"))


@pytest.mark.skipif(not BIG, reason="set PLTEST_INTEROP_BIG=1 (a 1,000,000-file table: minutes, gigabytes)")
def test_deltars_loads_million_file_table(tmp_path):
    import pyarrow as pa
    from deltalake import DeltaTable

    table = tmp_path / "big"
    env = dict(os.environ, PLTEST_BIG="1", PLTEST_BIG_DIR=str(table), PLTEST_BIG_FILES=str(FILES))
    out = subprocess.run(["go", "test", "-count=1", "-timeout", "60m", "-run", "^TestMillionFiles$", "-v", "./commitlog"],
                         cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    print(out.stdout[-3000:])
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "--- PASS: TestMillionFiles" in out.stdout

    # The log is the checkpoint and its own commit: everything below was
    # cleaned up, so delta-rs must read protolake's checkpoint.
    log = sorted(p.name for p in (table / "_delta_log").iterdir())
    checkpoints = [n for n in log if n.endswith(".checkpoint.parquet")]
    assert len(checkpoints) == 1, log
    version = int(checkpoints[0][:20])
    assert [n for n in log if n.endswith(".json")] == [f"{version:020d}.json"], log

    start = time.time()
    dt = DeltaTable(str(table))
    uris = dt.file_uris()
    secs = time.time() - start
    print(f"delta-rs load: files={len(uris)} version={dt.version()} seconds={secs:.2f} "
          f"maxrss_mb={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}")
    assert len(uris) == FILES
    assert len(set(uris)) == FILES
    # The same files protolake wrote: part numbers 0..FILES-1.
    parts = sorted(int(u.rsplit("/part-", 1)[1][:8]) for u in uris)
    assert parts == list(range(FILES))
    # delta-rs's view of each file's partition value and stats.
    adds = pa.table(dt.get_add_actions(flatten=True)).to_pydict()
    assert len(adds["path"]) == FILES
    assert all(n >= 1000 for n in adds["num_records"])
